/// Why a live update was refused or failed; each message names the thing and what was expected.
package enum LiveUpdateError: Error, CustomStringConvertible, Equatable {
    /// The binary cannot be the new VMM; the guest runs on untouched.
    case binaryUnusable(path: String, reason: String)
    /// A region's memory cannot be kept across exec.
    case memoryNotInheritable(region: String, reason: String)
    /// A device's host side cannot be kept across exec.
    case deviceNotInheritable(device: String, reason: String)
    /// The handoff file cannot be written or read.
    case handoff(path: String, reason: String)
    /// The handoff was written by a VMM whose layout this one does not read.
    case handoffVersion(path: String, found: Int, expected: Int)
    /// exec itself failed; the old VMM continues the guest.
    case execFailed(path: String, reason: String)
    /// The new VMM could not rebuild the machine.
    case restoreFailed(reason: String)
    /// The two VMMs of a transfer-mode update could not talk (a message lost, late or malformed).
    case transfer(reason: String)

    package var description: String {
        switch self {
        case .binaryUnusable(let path, let reason): "cannot update to \(path): \(reason)"
        case .memoryNotInheritable(let region, let reason): "cannot update in place: region \(region) \(reason)"
        case .deviceNotInheritable(let device, let reason): "cannot update in place: device \(device): \(reason)"
        case .handoff(let path, let reason): "update state \(path): \(reason)"
        case .handoffVersion(let path, let found, let expected):
            "update state \(path) has handoff version \(found); this Engram reads version \(expected)"
        case .execFailed(let path, let reason): "exec of \(path) failed: \(reason)"
        case .restoreFailed(let reason): reason
        case .transfer(let reason): "transfer-mode update: \(reason)"
        }
    }
}

import LinuxSystem
import Glibc
import SystemPackage

/// Why an image could not be opened or a question about it answered; each message names the
/// input and what was expected, in one line.
package enum InspectError: Error, CustomStringConvertible, Equatable {
    /// A system call on `path` failed.
    case systemCall(path: String, name: String, errno: Int32)
    /// The input is none of the formats Engram reads.
    case unknownFormat(path: String, reason: String)
    /// The input has a known format but its contents break it.
    case damaged(path: String, reason: String)
    /// A guest-physical address no region covers.
    case unmappedPhysical(address: UInt64, regions: String)
    /// A virtual address the guest's page tables do not map.
    case unmappedVirtual(address: UInt64, level: String, entryAddress: UInt64)
    /// The question needs something the image does not have (a CR3, a region).
    case missing(what: String, reason: String)
    /// A user's argument does not make sense for this image.
    case badArgument(String)

    package var description: String {
        switch self {
        case .systemCall(let path, let name, let errno):
            "\(path): \(name) failed: \(Errno(rawValue: errno)) (errno \(errno))"
        case .unknownFormat(let path, let reason):
            "\(path) is not a memory image Engram reads: \(reason)"
        case .damaged(let path, let reason):
            "\(path) is damaged: \(reason)"
        case .unmappedPhysical(let address, let regions):
            "guest-physical address 0x\(String(address, radix: 16)) is in no region (regions cover \(regions))"
        case .unmappedVirtual(let address, let level, let entryAddress):
            "virtual address 0x\(String(address, radix: 16)) is not mapped: its \(level) entry at guest-physical 0x\(String(entryAddress, radix: 16)) is not present"
        case .missing(let what, let reason):
            "no \(what): \(reason)"
        case .badArgument(let reason):
            reason
        }
    }
}

extension InspectError {
    /// A failed system call on an input or output file.
    package init(_ error: SystemError) {
        self = .systemCall(path: error.subject, name: error.call, errno: error.errno.rawValue)
    }
}

import SystemPackage

/// Why a userfaultfd call failed; each message names the call, the host range and the kernel's reason.
package enum UserfaultError: Error, CustomStringConvertible, Equatable {
    /// Neither userfaultfd(2) nor /dev/userfaultfd gave a descriptor.
    case unavailable(Errno, device: Errno?)
    /// UFFDIO_API refused the handshake or did not grant every feature asked for.
    case missingFeatures(requested: UserfaultFeatures, granted: UserfaultFeatures)
    /// An ioctl on a host range failed.
    case ioctl(name: String, start: UInt64, length: UInt64, Errno)
    /// read(2) of fault messages failed.
    case read(Errno)
    /// The descriptor was closed (the restore finished) before the call.
    case closed(name: String)

    package var description: String {
        switch self {
        case .unavailable(let errno, let device):
            "userfaultfd is not available: \(errno)"
                + (device.map { "; /dev/userfaultfd: \($0)" } ?? "")
                + " (need kernel 4.11+ and vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE, or access to /dev/userfaultfd)"
        case .missingFeatures(let requested, let granted):
            "the kernel's userfaultfd lacks \(requested.subtracting(granted)) (asked for \(requested), granted \(granted))"
        case .ioctl(let name, let start, let length, let errno):
            "\(name) of host range 0x\(String(start, radix: 16))+0x\(String(length, radix: 16)) failed: \(errno)"
        case .read(let errno):
            "reading userfaultfd messages failed: \(errno)"
        case .closed(let name):
            "\(name) on a closed userfaultfd"
        }
    }
}

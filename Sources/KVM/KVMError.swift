import SystemPackage

/// A KVM call that failed, naming the ioctl and the kernel's reason.
package enum KVMError: Error, CustomStringConvertible, Equatable {
    /// /dev/kvm cannot be opened: no KVM on this host, or no permission.
    case unavailable(path: String, Errno)
    /// The kernel speaks a KVM API version other than 12.
    case apiVersion(found: Int32)
    /// A capability Engram needs is missing.
    case missingCapability(String)
    /// An ioctl failed.
    case ioctl(name: String, Errno)
    /// mmap of the vCPU's shared run structure failed.
    case runMapping(Errno)

    package var description: String {
        switch self {
        case .unavailable(let path, let errno):
            "cannot open \(path) (\(errno)); Engram needs KVM: load kvm_intel/kvm_amd and check permissions"
        case .apiVersion(let found): "KVM API version is \(found); expected 12"
        case .missingCapability(let name): "KVM lacks \(name), which Engram needs"
        case .ioctl(let name, let errno): "\(name) failed: \(errno)"
        case .runMapping(let errno): "mmap of the vCPU run structure failed: \(errno)"
        }
    }
}

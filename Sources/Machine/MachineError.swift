import LinuxSystem
import Devices
import GuestMemory
import KVM
import SnapshotFormat
import SystemPackage

/// Why a machine could not be built or started; each message names the thing and what was expected.
package enum MachineError: Error, CustomStringConvertible {
    case kernelUnreadable(path: String, Errno)
    case kernelFormat(path: String, reason: String)
    case initrdUnreadable(path: String, Errno)
    case doesNotFit(what: String, sizeInBytes: UInt64, reason: String)
    case commandLineTooLong(length: Int, maximum: Int)
    case invalidConfiguration(String)
    case memory(GuestMemoryError)
    case kvm(KVMError)
    case device(DeviceError)
    case thread(SystemCallError)
    case snapshot(SnapshotFormatError)

    package var description: String {
        switch self {
        case .kernelUnreadable(let path, let errno): "cannot read kernel \(path): \(errno)"
        case .kernelFormat(let path, let reason): "kernel \(path): \(reason)"
        case .initrdUnreadable(let path, let errno): "cannot read initrd \(path): \(errno)"
        case .doesNotFit(let what, let size, let reason): "\(what) (\(size) bytes) does not fit: \(reason)"
        case .commandLineTooLong(let length, let maximum): "kernel command line is \(length) bytes; at most \(maximum) allowed"
        case .invalidConfiguration(let reason): reason
        case .memory(let error): error.description
        case .kvm(let error): error.description
        case .device(let error): error.description
        case .thread(let error): "cannot start a thread: \(error)"
        case .snapshot(let error): error.description
        }
    }
}

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
    /// A vCPU count outside what the machine supports.
    case cpuCount(Int)
    /// An operation that needs the vCPUs parked was asked of a running machine.
    case notPaused(operation: String)
    /// A snapshot's or handoff's saved state cannot be read (no version, a newer one, damage).
    case stateUnreadable(String)
    /// The machine state could not be encoded.
    case stateEncoding(String)
    /// A saved state or snapshot that does not fit this machine or host (vCPUs, regions, CPU features).
    case incompatibleState(String)
    /// The console log cannot be opened.
    case consoleLog(path: String, Errno)
    /// The display file or framebuffer region cannot be used.
    case display(String)
    case memory(GuestMemoryError)
    case kvm(KVMError)
    case device(DeviceError)
    case thread(SystemError)
    case snapshot(SnapshotFormatError)
    /// A disk image that cannot be served.
    case disk(path: String, reason: String)
    /// A virtio device could not be wired to KVM or its thread.
    case virtio(device: String, reason: String)
    /// The vsock device's socket path cannot be listened on.
    case vsock(path: String, reason: String)
    /// A network interface's tap (named, or a descriptor handed over) cannot be used.
    case network(String, reason: String)

    package var description: String {
        switch self {
        case .kernelUnreadable(let path, let errno): "cannot read kernel \(path): \(errno)"
        case .kernelFormat(let path, let reason): "kernel \(path): \(reason)"
        case .initrdUnreadable(let path, let errno): "cannot read initrd \(path): \(errno)"
        case .doesNotFit(let what, let size, let reason): "\(what) (\(size) bytes) does not fit: \(reason)"
        case .commandLineTooLong(let length, let maximum): "kernel command line is \(length) bytes; at most \(maximum) allowed"
        case .cpuCount(let count): "--cpus must be between 1 and \(MachineConfiguration.maximumCPUCount); got \(count)"
        case .notPaused(let operation): "the VM must be paused to \(operation)"
        case .stateUnreadable(let reason), .stateEncoding(let reason), .incompatibleState(let reason), .display(let reason): reason
        case .consoleLog(let path, let errno): "cannot open console log \(path): \(errno)"
        case .memory(let error): error.description
        case .kvm(let error): error.description
        case .device(let error): error.description
        case .thread(let error): "cannot start a thread: \(error)"
        case .snapshot(let error): error.description
        case .disk(let path, let reason): "disk \(path): \(reason)"
        case .virtio(let device, let reason): "virtio device \(device): \(reason)"
        case .vsock(let path, let reason): "vsock socket \(path): \(reason)"
        case .network(let hostSide, let reason): "network \(hostSide): \(reason)"
        }
    }
}

import CLinux
import GuestMemory
import Glibc
import LinuxSystem
import SystemPackage

/// The /dev/kvm handle: version and capability checks, and the host's supported CPUID.
package final class KVMSystem: Sendable {
    package static let defaultPath = "/dev/kvm"
    let descriptor: OwnedFileDescriptor
    /// Size of each vCPU's shared kvm_run mapping.
    package let vcpuMappingSize: Int
    /// Bytes of a vCPU's XSAVE area as KVM transfers it.
    package let extendedStateSize: Int

    /// Opens /dev/kvm and checks the API version.
    package init(path: String = KVMSystem.defaultPath) throws(KVMError) {
        let fd = unsafe open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .unavailable(path: path, Errno(rawValue: errno)) }
        descriptor = OwnedFileDescriptor(taking: fd)
        let version = try KVMCall.ioctl(fd, CLINUX_KVM_GET_API_VERSION, "KVM_GET_API_VERSION")
        guard version == 12 else { throw .apiVersion(found: version) }
        vcpuMappingSize = Int(try KVMCall.ioctl(fd, CLINUX_KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"))
        extendedStateSize = max(4096, Int(try KVMCall.ioctl(fd, CLINUX_KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION",
                                                            integer: UInt(KVM_CAP_XSAVE2))))
        for (capability, name) in [(KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"), (KVM_CAP_PIT2, "KVM_CAP_PIT2"),
                                   (KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"),
                                   (KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT")] {
            guard try checkExtension(capability) > 0 else { throw .missingCapability(name) }
        }
    }

    /// Whether the host KVM is usable at `path`: for tests that must skip without KVM.
    package static func isAvailable(path: String = KVMSystem.defaultPath) -> Bool {
        unsafe access(path, R_OK | W_OK) == 0
    }

    /// KVM_CHECK_EXTENSION: 0 when absent, else a capability-specific value.
    package func checkExtension(_ capability: Int32) throws(KVMError) -> Int32 {
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_CHECK_EXTENSION, "KVM_CHECK_EXTENSION", integer: UInt(capability))
    }

    /// KVM_GET_SUPPORTED_CPUID: every leaf the host can offer a guest.
    package func supportedCPUID() throws(KVMError) -> [CPUIDEntry] {
        let header = MemoryLayout<kvm_cpuid2>.size
        let entrySize = MemoryLayout<kvm_cpuid_entry2>.stride
        var capacity = 128
        while true {
            var buffer = [UInt8](repeating: 0, count: header + capacity * entrySize)
            // SAFETY: the count field is the buffer's first four bytes.
            unsafe buffer.withUnsafeMutableBytes { unsafe $0.storeBytes(of: UInt32(capacity), as: UInt32.self) }
            do {
                try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_SUPPORTED_CPUID, "KVM_GET_SUPPORTED_CPUID", buffer: &buffer)
            } catch {
                if case .ioctl(_, let reason) = error, reason == .argListTooLong, capacity < 4096 { capacity *= 2; continue }
                throw error
            }
            // SAFETY: the kernel wrote `nent` entries after the header, within the buffer.
            return unsafe buffer.withUnsafeBytes { raw in
                let count = unsafe Int(raw.load(as: UInt32.self))
                return (0..<count).map { unsafe CPUIDEntry(raw.loadUnaligned(fromByteOffset: header + $0 * entrySize, as: kvm_cpuid_entry2.self)) }
            }
        }
    }

    /// KVM_GET_MSR_INDEX_LIST: the MSRs whose state a save must carry (TSC, kvmclock, syscall MSRs, ...).
    package func savedMSRIndices() throws(KVMError) -> [UInt32] {
        var buffer = [UInt8](repeating: 0, count: 4 + 4 * 1024)
        // SAFETY: the count field is the buffer's first four bytes.
        unsafe buffer.withUnsafeMutableBytes { unsafe $0.storeBytes(of: UInt32(1024), as: UInt32.self) }
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_MSR_INDEX_LIST, "KVM_GET_MSR_INDEX_LIST", buffer: &buffer)
        let reader = buffer
        let count = min(1024, Int(UInt32(reader[0]) | UInt32(reader[1]) << 8 | UInt32(reader[2]) << 16 | UInt32(reader[3]) << 24))
        return (0..<count).map { i in
            let o = 4 + 4 * i
            return UInt32(reader[o]) | UInt32(reader[o + 1]) << 8 | UInt32(reader[o + 2]) << 16 | UInt32(reader[o + 3]) << 24
        }
    }

    /// KVM_CREATE_VM.
    package func createVirtualMachine() throws(KVMError) -> VirtualMachine {
        let fd = try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_CREATE_VM, "KVM_CREATE_VM", integer: 0)
        return VirtualMachine(descriptor: OwnedFileDescriptor(taking: fd), system: self)
    }
}

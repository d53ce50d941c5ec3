import CLinux
import GuestMemory
import Glibc
import LinuxSystem
import SystemPackage

/// The general-purpose registers (struct kvm_regs).
package typealias VCPURegisters = kvm_regs
/// Segment, control and descriptor-table registers (struct kvm_sregs).
package typealias VCPUSpecialRegisters = kvm_sregs
/// A segment register's hidden state (struct kvm_segment).
package typealias VCPUSegment = kvm_segment

/// One virtual CPU: its descriptor and the kvm_run page shared with the kernel.
///
/// `runOnce()` is called only from the vCPU's own thread; `setImmediateExit` from any thread (a pause's kick).
@safe
package final class VirtualCPU: @unchecked Sendable {
    package let id: UInt32
    let descriptor: OwnedFileDescriptor
    /// Keeps the VM, and so the memory its slots map, alive while this vCPU can run.
    private let machine: VirtualMachine
    private let run: UnsafeMutablePointer<kvm_run>
    private let mappingSize: Int
    /// Bytes of the XSAVE area KVM transfers (KVM_CAP_XSAVE2, at least 4 KiB).
    let extendedStateSize: Int

    init(id: UInt32, descriptor: OwnedFileDescriptor, machine: VirtualMachine, mappingSize: Int, extendedStateSize: Int) throws(KVMError) {
        // SAFETY: maps the vCPU's run structure at its fixed size; unmapped in deinit.
        let mapped = unsafe mmap(nil, mappingSize, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor.rawValue, 0)
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else { throw .runMapping(Errno(rawValue: errno)) }
        self.id = id
        self.descriptor = descriptor
        self.machine = machine
        self.extendedStateSize = extendedStateSize
        self.mappingSize = mappingSize
        unsafe self.run = mapped.assumingMemoryBound(to: kvm_run.self)
    }

    deinit {
        // SAFETY: unmaps the run structure mapped in init.
        _ = unsafe munmap(run, mappingSize)
    }

    /// KVM_RUN once, decoding the exit. Allocation-free: the vCPU thread's hot path.
    package func runOnce() throws(KVMError) -> VCPUExit {
        if clinux_ioctl_int(descriptor.rawValue, CLINUX_KVM_RUN, 0) < 0 {
            let error = errno
            if error == EINTR || error == EAGAIN { return .interrupted }
            throw .ioctl(name: "KVM_RUN", Errno(rawValue: error))
        }
        // SAFETY: the kernel filled the run structure for this exit; fields read per exit reason.
        let state = unsafe run.pointee
        switch Int32(state.exit_reason) {
        case KVM_EXIT_IO:
            let io = state.io
            let port = io.port, size = Int(io.size), count = Int(io.count)
            return io.direction == UInt8(KVM_EXIT_IO_OUT)
                ? .ioOut(port: port, size: size, count: count) : .ioIn(port: port, size: size, count: count)
        case KVM_EXIT_MMIO:
            let mmio = state.mmio
            let size = Int(mmio.len)
            if mmio.is_write != 0 {
                var value: UInt64 = 0
                unsafe withUnsafeBytes(of: mmio.data) { bytes in
                    for i in 0..<min(size, 8) { value |= unsafe UInt64(bytes[i]) << (8 * UInt64(i)) }
                }
                return .mmioWrite(address: mmio.phys_addr, size: size, value: value)
            }
            return .mmioRead(address: mmio.phys_addr, size: size)
        case KVM_EXIT_HLT: return .halt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_SYSTEM_EVENT: return .systemEvent(type: state.system_event.type)
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: state.internal.suberror)
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(reason: state.fail_entry.hardware_entry_failure_reason)
        case KVM_EXIT_INTR: return .interrupted
        default: return .unhandled(reason: state.exit_reason)
        }
    }

    /// Item `index` of the current port I/O exit's data, `size` bytes little-endian.
    package func ioData(index: Int, size: Int) -> UInt32 {
        // SAFETY: data_offset and count come from the kernel for this exit and stay within the run mapping.
        let base = unsafe UnsafeRawPointer(run) + Int(run.pointee.io.data_offset) + index * size
        switch size {
        case 1: return UInt32(unsafe base.load(as: UInt8.self))
        case 2: return UInt32(unsafe base.loadUnaligned(as: UInt16.self))
        default: return unsafe base.loadUnaligned(as: UInt32.self)
        }
    }

    /// Answers item `index` of the current IN exit.
    package func setIOData(index: Int, size: Int, value: UInt32) {
        // SAFETY: as in ioData: a kernel-given offset inside the run mapping.
        let base = unsafe UnsafeMutableRawPointer(run) + Int(run.pointee.io.data_offset) + index * size
        switch size {
        case 1: unsafe base.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
        case 2: unsafe base.storeBytes(of: UInt16(truncatingIfNeeded: value), as: UInt16.self)
        default: unsafe base.storeBytes(of: value, as: UInt32.self)
        }
    }

    /// Answers the current MMIO read exit.
    package func setMMIOData(_ value: UInt64) {
        // SAFETY: mmio.data is an 8-byte array inside the run structure.
        unsafe withUnsafeMutableBytes(of: &run.pointee.mmio.data) { bytes in
            for i in 0..<8 { unsafe bytes[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
    }

    /// The RIP of the guest's last exit, for error messages (from KVM_GET_REGS).
    package func instructionPointer() -> UInt64? { try? registers().rip }

    /// Sets or clears `immediate_exit`, so KVM_RUN returns at once; paired with a signal to kick a running vCPU.
    package func setImmediateExit(_ on: Bool) {
        // SAFETY: a one-byte field of the run structure, written atomically by the CPU.
        unsafe run.pointee.immediate_exit = on ? 1 : 0
    }

    package func registers() throws(KVMError) -> VCPURegisters {
        var value = VCPURegisters()
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_REGS, "KVM_GET_REGS", value: &value)
        return value
    }

    package func setRegisters(_ registers: VCPURegisters) throws(KVMError) {
        var value = registers
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_REGS, "KVM_SET_REGS", value: &value)
    }

    package func specialRegisters() throws(KVMError) -> VCPUSpecialRegisters {
        var value = VCPUSpecialRegisters()
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_SREGS, "KVM_GET_SREGS", value: &value)
        return value
    }

    package func setSpecialRegisters(_ registers: VCPUSpecialRegisters) throws(KVMError) {
        var value = registers
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_SREGS, "KVM_SET_SREGS", value: &value)
    }

    /// KVM_SET_CPUID2: what CPUID returns to this vCPU.
    package func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        var buffer = Self.variableLengthBuffer(
            header: MemoryLayout<kvm_cpuid2>.size, count: entries.map(\.kernelEntry))
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_CPUID2, "KVM_SET_CPUID2", buffer: &buffer)
    }

    /// KVM_SET_MSRS for (index, value) pairs.
    package func setModelSpecificRegisters(_ values: [(index: UInt32, value: UInt64)]) throws(KVMError) {
        let entries = values.map { msr in
            var entry = kvm_msr_entry()
            entry.index = msr.index
            entry.data = msr.value
            return entry
        }
        var buffer = Self.variableLengthBuffer(header: MemoryLayout<kvm_msrs>.size, count: entries)
        let written = try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_MSRS, "KVM_SET_MSRS", buffer: &buffer)
        guard written == values.count else {
            throw .ioctl(name: "KVM_SET_MSRS (MSR 0x\(String(values[Int(written)].index, radix: 16)))", .invalidArgument)
        }
    }

    /// KVM_GET_LAPIC: the local APIC's 1 KiB register page.
    package func localAPIC() throws(KVMError) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: MemoryLayout<kvm_lapic_state>.size)
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_GET_LAPIC, "KVM_GET_LAPIC", buffer: &page)
        return page
    }

    /// KVM_SET_LAPIC from a 1 KiB register page.
    package func setLocalAPIC(_ page: [UInt8]) throws(KVMError) {
        guard page.count == MemoryLayout<kvm_lapic_state>.size else {
            throw .ioctl(name: "KVM_SET_LAPIC (a local APIC page of \(page.count) bytes; expected \(MemoryLayout<kvm_lapic_state>.size))", .invalidArgument)
        }
        var copy = page
        try KVMCall.ioctl(descriptor.rawValue, CLINUX_KVM_SET_LAPIC, "KVM_SET_LAPIC", buffer: &copy)
    }

    /// A kernel struct of a 32-bit count, padding to `header` bytes, then the entries.
    private static func variableLengthBuffer<Entry: BitwiseCopyable>(header: Int, count entries: [Entry]) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: header + entries.count * MemoryLayout<Entry>.stride)
        // SAFETY: writes stay within the buffer sized just above.
        unsafe buffer.withUnsafeMutableBytes { raw in
            unsafe raw.storeBytes(of: UInt32(entries.count), as: UInt32.self)
            for (i, entry) in entries.enumerated() {
                unsafe raw.storeBytes(of: entry, toByteOffset: header + i * MemoryLayout<Entry>.stride, as: Entry.self)
            }
        }
        return buffer
    }

}

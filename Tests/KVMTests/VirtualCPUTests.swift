import GuestMemory
import KVM
import Testing
import TestSupport

/// KVM without a kernel: a few bytes of 32-bit code in a memfd region, and the exits they cause.
/// (Flat protected mode, as the PVH entry uses.)
@Suite(.enabled(if: TestEnvironment.hasKVM, "needs /dev/kvm"))
struct VirtualCPUTests {
    /// mov edx,0x3f8; mov al,'A'; out dx,al; in al,dx; add al,1; out dx,al; hlt
    static let program: [UInt8] = [0xba, 0xf8, 0x03, 0x00, 0x00, 0xb0, 0x41, 0xee, 0xec, 0x04, 0x01, 0xee, 0xf4]

    func makeVCPU() throws -> (VirtualMachine, VirtualCPU, GuestRegion) {
        let kvm = try KVMSystem()
        let vm = try kvm.createVirtualMachine()
        try vm.setSystemAreas(tssAddress: GuestAddress(0xfffb_d000), identityMapAddress: GuestAddress(0xfffb_c000))
        let region = try GuestRegion(name: "ram", sizeInBytes: 16 << 20, backing: .memfd)
        try vm.map(GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 16 << 20, region: region, regionOffset: RegionOffset(0)), slot: 0)
        try region.write(Self.program, at: RegionOffset(0x10_0000))
        let vcpu = try vm.createVirtualCPU(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())  // a vCPU without CPUID cannot run here
        var special = try vcpu.specialRegisters()
        var code = special.cs
        (code.base, code.limit, code.selector, code.type, code.present, code.dpl, code.db, code.s, code.l, code.g) =
            (0, 0xffff_ffff, 0x10, 0xb, 1, 0, 1, 1, 0, 1)
        var data = code
        (data.selector, data.type) = (0x18, 0x3)
        (special.cs, special.ds, special.es, special.ss) = (code, data, data, data)
        // The same descriptors in a GDT at 0x500: this KVM's emulator reads them from guest memory.
        let gdt: [UInt64] = [0, 0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff]
        try region.write(gdt.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }, at: RegionOffset(0x500))
        (special.gdt.base, special.gdt.limit) = (0x500, 31)
        special.cr0 = 0x11  // PE | ET; caches on (reset CD/NW are not runnable here)
        try vcpu.setSpecialRegisters(special)
        var registers = try vcpu.registers()
        registers.rip = 0x10_0000
        registers.rflags = 0x2
        try vcpu.setRegisters(registers)
        return (vm, vcpu, region)
    }

    @Test func portIOExitsCarryTheirDataBothWays() throws {
        let (_, vcpu, _) = try makeVCPU()
        #expect(try vcpu.runOnce() == .ioOut(port: 0x3f8, size: 1, count: 1))
        #expect(vcpu.ioData(index: 0, size: 1) == 0x41)
        #expect(try vcpu.runOnce() == .ioIn(port: 0x3f8, size: 1, count: 1))
        vcpu.setIOData(index: 0, size: 1, value: 0x60)
        #expect(try vcpu.runOnce() == .ioOut(port: 0x3f8, size: 1, count: 1))
        #expect(vcpu.ioData(index: 0, size: 1) == 0x61)
        #expect(try vcpu.runOnce() == .halt)
    }

    @Test func immediateExitReturnsBeforeRunningGuestCode() throws {
        let (_, vcpu, _) = try makeVCPU()
        vcpu.setImmediateExit(true)
        #expect(try vcpu.runOnce() == .interrupted)
        #expect(try vcpu.registers().rip == 0x10_0000)
        vcpu.setImmediateExit(false)
        #expect(try vcpu.runOnce() == .ioOut(port: 0x3f8, size: 1, count: 1))
    }

    @Test func supportedCPUIDAndInKernelDevices() throws {
        let kvm = try KVMSystem()
        let cpuid = try kvm.supportedCPUID()
        #expect(cpuid.contains { $0.function == 0 })
        #expect(cpuid.contains { $0.function == 1 })
        let vm = try kvm.createVirtualMachine()
        try vm.createInterruptController()
        try vm.createTimer()
        let vcpu = try vm.createVirtualCPU(id: 0)
        try vcpu.setCPUID(cpuid)
        let apic = try vcpu.localAPIC()
        #expect(apic.count == 1024)
        try vcpu.setLocalAPIC(apic)
        _ = try vm.timerState()
    }

    @Test func missingDeviceNodeIsAClearError() {
        #expect(throws: KVMError.self) { try KVMSystem(path: "/nonexistent/kvm") }
        let message = (try? KVMSystem(path: "/nonexistent/kvm")).map { _ in "" } ?? KVMError.unavailable(path: "/nonexistent/kvm", .noSuchFileOrDirectory).description
        #expect(message.contains("/nonexistent/kvm"))
    }
}

import GuestMemory
import KVM
import Testing
import TestSupport

/// KVM's dirty log without a kernel: a few bytes of 32-bit code write to two slots, and the
/// log names exactly those pages, counted from each slot's own guest address.
@Suite(.enabled(if: TestEnvironment.hasKVM, "needs /dev/kvm"))
struct DirtyLogTests {
    /// mov [0x200010],eax; mov [0x10003004],eax; hlt
    static let program: [UInt8] = [0xa3, 0x10, 0x00, 0x20, 0x00, 0xa3, 0x04, 0x30, 0x00, 0x10, 0xf4]

    /// One 16 MiB region in two slots: guest 0 → region 0 (slot 0), guest 256 MiB → region 8 MiB (slot 1).
    func makeMachine() throws -> (VirtualMachine, VirtualCPU, GuestRegion) {
        let kvm = try KVMSystem()
        let vm = try kvm.createVirtualMachine()
        try vm.setSystemAreas(tssAddress: GuestAddress(0xfffb_d000), identityMapAddress: GuestAddress(0xfffb_c000))
        let region = try GuestRegion(name: "ram", sizeInBytes: 16 << 20, backing: .memfd)
        try vm.map(GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 8 << 20, region: region, regionOffset: RegionOffset(0)), slot: 0)
        try vm.map(GuestMapping(guestAddress: GuestAddress(0x1000_0000), sizeInBytes: 8 << 20, region: region, regionOffset: RegionOffset(8 << 20)),
                   slot: 1)
        try region.write(Self.program, at: RegionOffset(0x10_0000))
        let vcpu = try vm.createVirtualCPU(id: 0)
        try vcpu.setCPUID(try kvm.supportedCPUID())
        var special = try vcpu.specialRegisters()
        var code = special.cs
        (code.base, code.limit, code.selector, code.type, code.present, code.dpl, code.db, code.s, code.l, code.g) =
            (0, 0xffff_ffff, 0x10, 0xb, 1, 0, 1, 1, 0, 1)
        var data = code
        (data.selector, data.type) = (0x18, 0x3)
        (special.cs, special.ds, special.es, special.ss) = (code, data, data, data)
        let gdt: [UInt64] = [0, 0, 0x00cf_9b00_0000_ffff, 0x00cf_9300_0000_ffff]
        try region.write(gdt.flatMap { value in (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }, at: RegionOffset(0x500))
        (special.gdt.base, special.gdt.limit) = (0x500, 31)
        special.cr0 = 0x11
        try vcpu.setSpecialRegisters(special)
        var registers = try vcpu.registers()
        registers.rip = 0x10_0000
        registers.rax = 0x1234_5678
        registers.rflags = 0x2
        try vcpu.setRegisters(registers)
        return (vm, vcpu, region)
    }

    /// Runs until the program halts (its port-free code exits only there, or on a kick).
    func runToHalt(_ vcpu: VirtualCPU) throws -> VCPUExit {
        var exit = try vcpu.runOnce()
        while exit == .interrupted { exit = try vcpu.runOnce() }
        return exit
    }

    @Test func guestWritesShowAsDirtyPagesOfTheirSlot() throws {
        let (vm, vcpu, region) = try makeMachine()
        try vm.setDirtyLogging(true, slot: 0)
        try vm.setDirtyLogging(true, slot: 1)
        #expect(vm.isLoggingDirtyPages(slot: 0) && vm.isLoggingDirtyPages(slot: 1))
        #expect(try runToHalt(vcpu) == .halt)
        // The writes really happened, through the re-issued slots.
        #expect(try region.read(count: 4, at: RegionOffset(0x20_0010)) == [0x78, 0x56, 0x34, 0x12])
        #expect(try region.read(count: 4, at: RegionOffset((8 << 20) + 0x3004)) == [0x78, 0x56, 0x34, 0x12])

        let low = try vm.dirtyPages(slot: 0)
        let high = try vm.dirtyPages(slot: 1)
        #expect(low.pageCount == 2048 && high.pageCount == 2048)
        #expect(low.contains(PageIndex(0x200)))
        #expect(!low.contains(PageIndex(3)) && !low.contains(PageIndex(0x7ff)))
        #expect(high.contains(PageIndex(3)))  // guest 0x1000_3004 is page 3 of slot 1
        #expect(high.setCount == 1, "only the one page written in slot 1; got \(high.setCount)")

        // Fetching cleared the log.
        #expect(!(try vm.dirtyPages(slot: 0)).contains(PageIndex(0x200)))
        #expect(try vm.dirtyPages(slot: 1).setCount == 0)
    }

    @Test func loggingOffMeansNoLogAndUnknownSlotsAreRefused() throws {
        let (vm, vcpu, _) = try makeMachine()
        #expect(!vm.isLoggingDirtyPages(slot: 0))
        #expect(throws: KVMError.self) { try vm.dirtyPages(slot: 0) }
        #expect(throws: KVMError.self) { try vm.setDirtyLogging(true, slot: 7) }
        try vm.setDirtyLogging(true, slot: 1)
        try vm.setDirtyLogging(false, slot: 1)
        #expect(throws: KVMError.self) { try vm.dirtyPages(slot: 1) }
        // Turning logging on and off leaves the slots working.
        #expect(try runToHalt(vcpu) == .halt)
    }
}

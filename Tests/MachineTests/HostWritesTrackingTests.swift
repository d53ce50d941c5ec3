import GuestMemory
import Testing
import TestSupport
@testable import Machine

/// What Engram writes into guest memory itself (devices) reaches every pre-copy pass and the next
/// diff, beside KVM's log of the guest's own writes.
@Suite(.enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct HostWritesTrackingTests {
    @Test func preCopyPassesAndTheNextDiffTakeThePagesDevicesWrote() throws {
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20))
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        #expect(machine.pause())
        let tracker = machine.dirtyPageTracker
        try tracker.startMigrationLog(virtualMachine: machine.virtualMachine, memory: machine.memory)
        try machine.memory.copy([1, 2, 3], from: 0, count: 3, to: GuestAddress(0x20_0ffe))  // pages 0x200 and 0x201
        let first = try tracker.collectForMigration(virtualMachine: machine.virtualMachine, memory: machine.memory)
        #expect(first["ram"]?.contains(PageIndex(0x200)) == true && first["ram"]?.contains(PageIndex(0x201)) == true)
        let second = try tracker.collectForMigration(virtualMachine: machine.virtualMachine, memory: machine.memory)
        #expect(second["ram"]?.contains(PageIndex(0x200)) == false, "a pass takes each write once")
        tracker.endMigrationLog(virtualMachine: machine.virtualMachine, memory: machine.memory)
    }
}

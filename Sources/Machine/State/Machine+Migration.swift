import FoundationEssentials
import GuestMemory

extension Machine {
    /// Starts logging the guest's writes for a migration's first pass (every page is sent
    /// once; later passes send what the log names).
    package func startMigrationDirtyLog() throws(MachineError) {
        do { try dirtyPageTracker.startMigrationLog(virtualMachine: virtualMachine, memory: memory) } catch { throw .kvm(error) }
    }

    /// The pages written since the previous call, per region name; clears the log. The vCPUs
    /// may be running (pre-copy passes) or paused (the final pass).
    package func migrationDirtyPages() throws(MachineError) -> [String: PageBitmap] {
        do { return try dirtyPageTracker.collectForMigration(virtualMachine: virtualMachine, memory: memory) } catch { throw .kvm(error) }
    }

    /// A failed or cancelled migration: stop logging unless a snapshot chain uses the log.
    package func endMigrationDirtyLog() {
        dirtyPageTracker.endMigrationLog(virtualMachine: virtualMachine, memory: memory)
    }

    /// The paused machine's state as one section container (configuration and state sections).
    package func encodedMachineState() throws(MachineError) -> [UInt8] {
        // The destination opens the disks by path, perhaps from storage this host shares with it.
        try virtio.syncDisks()
        return try saveState().encodedSections()
    }
}

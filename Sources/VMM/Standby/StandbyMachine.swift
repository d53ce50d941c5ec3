import GuestMemory
import LinuxSystem
import Machine
import Paging
import SnapshotFormat

/// What a standby VMM builds before it knows its snapshot: placeholder guest RAM of the size it
/// was given, and a KVM VM (interrupt controller, timer, vCPUs) whose memory slots are already
/// registered over that placeholder. A restore maps the snapshot's memory over the placeholder's
/// addresses (KVM follows a mapping replaced under a slot), so neither the VM nor its slots are
/// made while the client waits.
///
/// A restore that fails once it has used the VM (vCPUs exist, and KVM cannot remove them) gives
/// it up; a fresh one is prepared over the same placeholder before the refusal is answered, so
/// the standby VMM always stays ready for the next request.
package final class StandbyMachine: Sendable {
    package let cpuCount: Int
    package let memorySizeInBytes: UInt64
    /// The hugetlbfs mount the placeholder RAM is on, nil for a memfd.
    package let hugetlbfs: String?
    /// The placeholder RAM, by region name, that restored regions are mapped over.
    package let placeholders: [String: GuestRegion]
    private let placeholderMemory: GuestMemoryMap
    private let shell: Locked<MachineShell?>
    /// A sample state of this VM's shape, whose coding was paid for at start (`StandbyRehearsal`).
    let sampleState: MachineStateRecord

    /// Makes the placeholder (a fresh memfd, or a file on `hugetlbfs` whose huge pages are
    /// reserved now: nothing is allocated until touched; a lazy or copy restore fills it in place,
    /// a mapped restore maps the snapshot over a memfd one) and prepares the VM over it.
    package init(cpuCount: Int, memorySizeInBytes: UInt64, hugetlbfs: String? = nil) throws(VMMError) {
        guard (1...MachineConfiguration.maximumCPUCount).contains(cpuCount) else {
            throw .invalidRequest("--cpus \(cpuCount): expected 1 to \(MachineConfiguration.maximumCPUCount)")
        }
        let ram: GuestRegion
        do { ram = try GuestRegion(name: "ram", sizeInBytes: memorySizeInBytes, backing: hugetlbfs.map { .hugetlbfs(directory: $0) } ?? .memfd) } catch {
            throw .invalidRequest("\(hugetlbfs.map { "--hugetlbfs \($0)" } ?? "--memory"): \(error)")
        }
        self.hugetlbfs = hugetlbfs
        self.cpuCount = cpuCount
        self.memorySizeInBytes = memorySizeInBytes
        placeholders = ["ram": ram]
        do { placeholderMemory = try Machine.restoredMemory([ram]) } catch { throw .failed(error.description) }
        let prepared = try Self.prepare(placeholderMemory, cpuCount: cpuCount)
        sampleState = prepared.warmUpStateCoding()
        shell = Locked(prepared)
    }

    /// Refuses, in one line and before anything is touched, a snapshot this standby VMM cannot
    /// become: other regions, another RAM size or another vCPU count, or (on huge pages) a mapped restore.
    package func checkFits(_ shapes: [SnapshotRegionShape], cpuCount saved: Int, mode: RestoreMode, snapshot: String) throws(VMMError) {
        if let hugetlbfs, mode == .map {
            throw .invalidRequest(
                "this standby VMM's RAM is on huge pages (--hugetlbfs \(hugetlbfs)), and a mapped restore's memory is the snapshot file itself, mapped in 4 KiB pages; ask for \"copy\" or \"lazy\"")
        }
        let names = shapes.map(\.name)
        guard names == ["ram"] else {
            throw .invalidRequest("\(snapshot) has the regions \(names); this standby VMM has only ram (no display)")
        }
        guard shapes[0].sizeInBytes == memorySizeInBytes else {
            throw .invalidRequest(
                "\(snapshot) has \(shapes[0].sizeInBytes >> 20) MiB of RAM; this standby VMM has \(memorySizeInBytes >> 20) MiB (--memory)")
        }
        guard saved == cpuCount else {
            throw .invalidRequest("\(snapshot) has \(saved) vCPUs; this standby VMM has \(cpuCount) (--cpus)")
        }
    }

    /// The prepared VM, for one restore; nil while another restore holds it.
    package func takeShell() -> MachineShell? { shell.withLock { held in defer { held = nil }; return held } }

    /// After a restore that took the shell failed: the placeholder's pages discarded if the
    /// restore filled it, and a fresh VM over it, so the next request finds one ready.
    package func replaceShell() throws(VMMError) {
        for placeholder in placeholders.values { placeholder.discardClaim() }
        let fresh = try Self.prepare(placeholderMemory, cpuCount: cpuCount)
        shell.withLock { $0 = fresh }
    }

    /// The VM, its slots registered, and its vCPUs created (a vCPU that never ran takes any state).
    private static func prepare(_ memory: GuestMemoryMap, cpuCount: Int) throws(VMMError) -> MachineShell {
        do {
            let shell = try Machine.prepareShell(memory: memory)
            try shell.waitForSlots()
            return try shell.creatingCPUs(cpuCount)
        } catch { throw .failed(error.description) }
    }
}

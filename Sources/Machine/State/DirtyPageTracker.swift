import GuestMemory
import KVM
import LinuxSystem
import SnapshotFormat

/// Which guest pages changed since this VM's last snapshot, and the file the next diff builds on.
///
/// KVM logs the guest's writes per memory slot once logging is on: from the first full
/// snapshot, or from the restore that adopted a snapshot as this VM's base. A diff fetches
/// the log of every slot (which clears it) and turns slot pages into region pages: slot i is
/// `memory.mappings[i]`, whose first page is region page `regionOffset / 4096`. Pages fetched
/// for a diff whose write then failed stay pending and join the next attempt, so no change
/// is lost. KVM logs only the guest's (and its own) writes; what Engram's devices write into
/// guest memory (disk reads, received frames, used rings) is in each region's `hostWrites`,
/// taken beside KVM's log every time and emptied with it.
final class DirtyPageTracker: Sendable {
    private struct State {
        /// The snapshot the next diff names as its parent; nil before the first.
        var parentPath: String?
        /// The parent's identity as it was written or adopted; a diff records it.
        var parentIdentity: SnapshotIdentity?
        /// A parent still being written (a fork's base): its id is known, its identity (which
        /// includes the header's CRC) is read from the file when the first diff needs it.
        var expectedParentID: SnapshotID?
        /// Every file from the chain's base (or the adopted snapshot) up to the parent; a diff must not replace one.
        var chainPaths: [String] = []
        /// Files below the adopted snapshot in the chain it was restored from.
        var filesBelow = 0
        /// Region pages fetched from KVM and not yet in a written diff, by region name.
        var pending: [String: PageBitmap] = [:]
    }

    private let state = Locked(State())

    /// The snapshot the next diff names as its parent; nil before the first snapshot.
    var parentPath: String? { state.withLock { $0.parentPath } }

    /// The files of the current chain, base first; the last is the parent.
    var chainPaths: [String] { state.withLock { $0.chainPaths } }

    /// The parent's identity; nil before the first snapshot, or while a parent chosen ahead
    /// (a fork's base) has not been written yet. Once that file is there with the id it was
    /// promised, its identity is read and kept.
    var parentIdentity: SnapshotIdentity? {
        state.withLock { state in
            if state.parentIdentity == nil, let expected = state.expectedParentID, let path = state.parentPath,
               let found = try? SnapshotDirectory.header(of: path).identity, found.id == expected {
                state.parentIdentity = found
            }
            return state.parentIdentity
        }
    }

    /// Files in the chain so far, those below an adopted snapshot included.
    var chainLength: Int { state.withLock { $0.filesBelow + $0.chainPaths.count } }

    /// Makes `path` the base of a new chain: logging on for every slot, each log emptied,
    /// nothing pending. Call while no vCPU runs, right after `path` captured guest memory.
    /// If KVM refuses, there is no parent, so no diff can build on a log that missed pages.
    /// `expecting` instead of an identity: `path` is still to be written, with that id.
    func startChain(
        at path: String, identity: SnapshotIdentity?, expecting expectedID: SnapshotID? = nil, filesBelow: Int = 0,
        virtualMachine: VirtualMachine, memory: GuestMemoryMap
    ) throws(KVMError) {
        try state.withLock { (state) throws(KVMError) in
            state = State()
            for slot in memory.mappings.indices.map(UInt32.init) {
                try virtualMachine.setDirtyLogging(true, slot: slot)
                _ = try virtualMachine.dirtyPages(slot: slot)
            }
            for region in memory.regions { region.hostWrites.clear() }
            state.parentPath = path
            state.parentIdentity = identity
            state.expectedParentID = identity == nil ? expectedID : nil
            state.chainPaths = [path]
            state.filesBelow = filesBelow
        }
    }

    /// Fetches (and so clears) every slot's log, adds it as region pages to the pages pending
    /// since the parent, and returns them all. Call while no vCPU runs. Each slot's pages are
    /// kept as soon as they are fetched, so a failure part way loses nothing.
    func collect(virtualMachine: VirtualMachine, memory: GuestMemoryMap) throws(KVMError) -> [String: PageBitmap] {
        let pageSize = PageSize.bytes64
        return try state.withLock { (state) throws(KVMError) in
            for (slot, mapping) in memory.mappings.enumerated() {
                let slotPages = try virtualMachine.dirtyPages(slot: UInt32(slot))
                let region = mapping.region
                let firstPage = mapping.regionOffset.rawValue / pageSize
                var pages = state.pending.removeValue(forKey: region.name) ?? PageBitmap(pageCount: region.sizeInBytes / pageSize)
                slotPages.forEachRun { (run: Range<PageIndex>) in
                    for page in run.lowerBound.rawValue..<run.upperBound.rawValue { pages.insert(PageIndex(firstPage + page)) }
                }
                state.pending[region.name] = pages
            }
            for region in memory.regions {
                var pages = state.pending[region.name] ?? PageBitmap(pageCount: region.sizeInBytes / pageSize)
                region.hostWrites.take(into: &pages)
                state.pending[region.name] = pages
            }
            return state.pending
        }
    }

    /// Turns logging on for every slot and empties the logs, for a migration's first pass. A
    /// snapshot chain in progress keeps what its logs held: those pages join its pending set.
    func startMigrationLog(virtualMachine: VirtualMachine, memory: GuestMemoryMap) throws(KVMError) {
        _ = try collectForMigration(virtualMachine: virtualMachine, memory: memory, enabling: true)
    }

    /// Fetches (and so clears) every slot's log for a migration pass and returns the pages
    /// written since the previous pass, per region name. If a snapshot chain is in progress the
    /// pages also join its pending set, so the next diff misses nothing the migration consumed.
    func collectForMigration(virtualMachine: VirtualMachine, memory: GuestMemoryMap, enabling: Bool = false) throws(KVMError) -> [String: PageBitmap] {
        let pageSize = PageSize.bytes64
        return try state.withLock { (state) throws(KVMError) in
            var fetched: [String: PageBitmap] = [:]
            for (slot, mapping) in memory.mappings.enumerated() {
                if enabling { try virtualMachine.setDirtyLogging(true, slot: UInt32(slot)) }
                let slotPages = try virtualMachine.dirtyPages(slot: UInt32(slot))
                let region = mapping.region
                let firstPage = mapping.regionOffset.rawValue / pageSize
                var pages = fetched[region.name] ?? PageBitmap(pageCount: region.sizeInBytes / pageSize)
                var pending = state.parentPath == nil ? nil : (state.pending.removeValue(forKey: region.name) ?? PageBitmap(pageCount: region.sizeInBytes / pageSize))
                slotPages.forEachRun { (run: Range<PageIndex>) in
                    for page in run.lowerBound.rawValue..<run.upperBound.rawValue {
                        pages.insert(PageIndex(firstPage + page))
                        pending?.insert(PageIndex(firstPage + page))
                    }
                }
                fetched[region.name] = pages
                if let pending { state.pending[region.name] = pending }
            }
            for region in memory.regions {
                var pages = fetched[region.name] ?? PageBitmap(pageCount: region.sizeInBytes / pageSize)
                region.hostWrites.take(into: &pages)
                if state.parentPath != nil {
                    var pending = state.pending[region.name] ?? PageBitmap(pageCount: region.sizeInBytes / pageSize)
                    pending.formUnion(pages)
                    state.pending[region.name] = pending
                }
                fetched[region.name] = pages
            }
            return fetched
        }
    }

    /// A migration that did not complete stops logging, unless a snapshot chain still needs it.
    func endMigrationLog(virtualMachine: VirtualMachine, memory: GuestMemoryMap) {
        state.withLock { state in
            guard state.parentPath == nil else { return }
            for slot in memory.mappings.indices { try? virtualMachine.setDirtyLogging(false, slot: UInt32(slot)) }
        }
    }

    /// A diff holding every pending page was written to `path`: it is the next diff's parent.
    func diffWritten(to path: String, identity: SnapshotIdentity) {
        state.withLock { state in
            state.pending = [:]
            state.parentPath = path
            state.parentIdentity = identity
            state.chainPaths.append(path)
        }
    }
}

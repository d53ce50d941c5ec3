import ControlAPI
import GuestMemory
import LinuxSystem
import Machine
import ObjectStore
import Paging
import SnapshotFormat

/// A VM restored from a snapshot, built and not yet running.
package struct RestoredVM {
    package let machine: Machine
    package let controller: MachineController
    package let fill: LazyFill?
    package let report: RestoreReport
    package let source: RestoreSource
    /// A lazy restore's control socket for the display file's header, written once faults are served.
    let displaySocket: String?

    /// Just before the vCPUs start: the lazy fill begins (snapshots wait for it), and the restore's
    /// time since `started` is recorded and told.
    package func prepareToRun(since started: ContinuousClock.Instant) throws(VMMError) {
        // A restored VM is a new instance of the saved one (there may be many): a new generation ID,
        // written before a lazy restore's fill starts, so the page it lands in comes at once.
        if let fill {
            try fill.start(for: machine) { () throws(VMMError) in
                try beginNewGeneration()
                if let displaySocket { machine.setDisplayControlSocket(displaySocket) }
            }
        } else {
            try beginNewGeneration()
        }
        report.finished(after: ContinuousClock.now - started)
        let files = source.fileCount == 1 ? "1 file" : "\(source.fileCount) files"
        let origin = source.chain == nil ? (RestoreSource.isObjectStore(report.snapshot) ? "object store" : "page server") : files
        Diagnostics.note("restored \(report.snapshot) (\(origin), \(report.mode)) in \(report.millisecondsText)")
    }
}

extension RestoredVM {
    private func beginNewGeneration() throws(VMMError) {
        do { try machine.beginNewGeneration() } catch { throw .failed(error.description) }
    }
}

/// Restores VMs from snapshots: memory in the chosen mode, the state decoded on another thread
/// while KVM registers the memory slots, the lazy pager when asked for.
package enum VMRestore {
    /// Restores `request` and runs the guest to its end; returns the exit status.
    package static func run(_ request: RestoreRequest) throws(VMMError) -> Int32 {
        let started = ContinuousClock.now
        TerminationSignals.block()
        let vm = try build(request)
        return try MachineSession.run(
            vm.machine, controller: vm.controller, setup: MachineSession.Setup(apiSocket: request.apiSocket),
            beforeStart: { () throws(VMMError) in try vm.prepareToRun(since: started) },
            afterEnd: { vm.fill?.stop() })
    }

    /// Opens the snapshot and builds the VM: memory, machine state, pager, controller. Nothing runs
    /// yet. Into a `standby` VMM, the memory goes over its placeholder and the VM is its prepared
    /// one; a snapshot that does not fit it is refused before either is touched.
    package static func build(_ request: RestoreRequest, standby: StandbyMachine? = nil) throws(VMMError) -> RestoredVM {
        try request.validate()
        let source = try openSource(request)
        guard let standby else { return try build(request, source: source, record: nil, standby: nil) }
        guard request.display == nil else { throw .invalidRequest("--display: a standby VMM has no display") }
        let record: MachineStateRecord
        do { record = try MachineStateRecord.decode(source.state, snapshotPath: request.snapshot) } catch { throw .failed(error.description) }
        try standby.checkFits(source.shapes, cpuCount: record.configuration.cpuCount, mode: request.memory, snapshot: request.snapshot)
        guard let shell = standby.takeShell() else { throw .invalidRequest("another restore into this standby VMM is under way") }
        do {
            return try build(request, source: source, record: record, standby: (standby.placeholders, shell))
        } catch {
            try standby.replaceShell()
            throw error
        }
    }

    /// Builds the VM from an open source; `record` is its state when already decoded.
    private static func build(
        _ request: RestoreRequest, source: RestoreSource, record: MachineStateRecord?,
        standby: (placeholders: [String: GuestRegion], shell: MachineShell)?
    ) throws(VMMError) -> RestoredVM {
        // The state decodes on another thread while KVM registers the memory slots.
        let snapshot = request.snapshot
        let state = source.state
        let overrides = request.overrides
        let decoding = BackgroundWork { () throws(MachineError) in
            if let record { return try overrides.applied(to: record) }
            return try overrides.applied(to: MachineStateRecord.decode(state, snapshotPath: snapshot))
        }
        // So do the file checks that need no page read (with --verify, opening the source did
        // them all already): every file's CRC tables, and the base's clear-bit slots (a mapped
        // restore would show the base's bytes where a clear bit means a zero page). Every mode
        // makes every check, so a file is refused in every mode or gives the same memory in each.
        // (Measured: one job waited for before memory loads beats a second one beside KVM's
        // set-up, which it slows on 2 cores.)
        let chain = request.verify ? nil : source.chain
        let tables = BackgroundWork(priority: .low) { () throws(SnapshotFormatError) in
            try chain?.checkCRCTables(includingBase: true)
            try chain?.base.verifyClearPagesAreZero()
        }
        // The working set loads meanwhile too, so the fill can claim it before the guest runs.
        let pages = source.pages
        let workingSet = request.memory == .lazy && request.prefetch && request.recordWorkingSetSeconds == nil
            ? BackgroundWork { () -> WorkingSet? in
                do { return try pages.loadWorkingSet() } catch {
                    Diagnostics.note("restoring without a working-set prefetch: \(error)")
                    return nil
                }
            }
            : nil
        let backings = try regionBackings(request, shapes: source.shapes)
        let machine: Machine
        do {
            // A copy reads all of memory: learn first whether the state is usable and fits.
            if request.memory == .copy {
                let record = try decoding.result()
                try record.checkFits(snapshotRegions: source.shapes)
                try record.checkCPUFeaturesOfThisHost()
            }
            // Copy reads page CRCs as it loads memory, and so does map for a chain's diffs. The
            // others wait for the checks once the machine is built, before anything runs, so
            // KVM's slot registration (the longest step) starts sooner.
            if request.memory == .copy || (request.memory == .map && source.fileCount > 1) { try tables.result() }
            let regions: [GuestRegion]
            let placeholders = standby?.placeholders ?? [:]
            switch request.memory {
            case .copy:
                regions = try SnapshotMemoryLoader.copy(source.pages, shapes: source.shapes, backings: backings, placeholders: placeholders)
            case .map:
                guard let chain = source.chain else { throw VMMError.invalidRequest("--memory map needs a local snapshot file") }
                regions = try SnapshotMemoryLoader.map(chain, placeholders: placeholders)
            case .lazy: regions = try SnapshotMemoryLoader.empty(shapes: source.shapes, backings: backings, placeholders: placeholders)
            }
            let memoryMap = try Machine.restoredMemory(regions)
            let shell = try standby?.shell ?? Machine.prepareShell(memory: memoryMap)
            machine = try Machine(restoring: try decoding.result(), snapshotRegions: source.shapes, memory: memoryMap, shell: shell,
                                  consoleLogPath: request.consoleLog)
            // A lazy restore's header page comes with its fill (below); the others name this VM's socket now.
            if request.memory != .lazy { machine.setDisplayControlSocket(request.apiSocket.map(PathName.absolute) ?? "") }
            // The restored snapshot becomes the parent of this VM's next diff snapshot.
            try tables.result()
            if request.trackDirtyPages, let chain = source.chain { try machine.adoptSnapshotBase(
                path: chain.path, identity: chain.files[0].header.identity, filesBelow: chain.files.count - 1) }
        } catch let error as VMMError {
            throw error
        } catch let error as MemoryLoadError {
            throw .failed(error.description)
        } catch let error as MachineError {
            throw .failed(error.description)
        } catch let error as SnapshotFormatError {
            throw .failed(error.description)
        } catch {
            throw .failed("\(error)")
        }
        let fill = request.memory == .lazy ? try lazyFill(request, machine.memory.regions, source, prefetch: workingSet?.result()) : nil
        let report = RestoreReport(snapshot: request.snapshot, mode: request.memory.rawValue, chainLength: source.fileCount)
        let controller = MachineController(
            machine: machine, liveUpdate: LiveUpdateSession(apiSocket: request.apiSocket, consoleLogPath: request.consoleLog),
            restore: report, lazyFill: fill)
        // A lazy restore's header names this VM's socket once faults are served (prepareToRun).
        return RestoredVM(machine: machine, controller: controller, fill: fill, report: report, source: source,
                          displaySocket: fill == nil ? nil : request.apiSocket.map(PathName.absolute) ?? "")
    }

    /// The snapshot the request names, opened.
    static func openSource(_ request: RestoreRequest) throws(VMMError) -> RestoreSource {
        if RestoreSource.isPageServer(request.snapshot) {
            if let conflict = request.security.conflict { throw .invalidRequest("a page server: \(conflict)") }
            return try RestoreSource(
                server: request.snapshot, security: request.security, prepared: request.preparedSecurity,
                reconnectTimeoutSeconds: request.reconnectTimeoutSeconds)
        }
        if RestoreSource.isObjectStore(request.snapshot) {
            guard let store = request.objectStore else { throw .invalidRequest("\(request.snapshot): no object store configured") }
            let client = try store.client()
            let cache: ChunkCache?
            do {
                let directory: String? = switch store.cache {
                case .standard: ChunkCache.defaultDirectory
                case .directory(let directory): directory
                case .none: nil
                }
                cache = try directory.map { (directory) throws(ObjectSnapshotError) in try ChunkCache(directory: directory, maximumBytes: store.cacheBytes) }
            } catch {
                client.shutdown()
                throw .failed("cannot restore from \(request.snapshot): \(error)")
            }
            return try RestoreSource(objectStore: store.location, name: request.snapshot, client: client, cache: cache)
        }
        return try RestoreSource(path: request.snapshot, verify: request.verify)
    }

    /// The lazy pager, prefetching the snapshot's working set or recording a new one.
    private static func lazyFill(
        _ request: RestoreRequest, _ regions: [GuestRegion], _ source: RestoreSource, prefetch workingSet: WorkingSet?
    ) throws(VMMError) -> LazyFill {
        // One page per fault from a page server: a request per page is cheap there and its answer
        // comes sooner, while the fill reads ahead of each fault; local files, a cluster.
        let clusterPages = request.faultClusterPages ?? (RestoreSource.isPageServer(source.name) ? 1 : 16)
        if let seconds = request.recordWorkingSetSeconds {
            let name = source.name
            let pages = source.pages
            // The fill hands the set over when the window ends; it is stored on a thread made here,
            // under this thread's filter (writing a file beside the snapshot, a PUT, a page-server
            // message), not the fill's, which only reads pages.
            let storer: SerialWorker
            do { storer = try SerialWorker(name: "working-set", role: .control) } catch { throw .failed("cannot start the working set's writer: \(error)") }
            let recorder = WorkingSetRecorder(milliseconds: UInt64(seconds * 1000), fingerprint: source.fingerprint) { set in
                storer.submit {
                    do {
                        try pages.storeWorkingSet(set)
                        Diagnostics.note("recorded a working set of \(set.pages.count) pages (\(set.pages.count * PageSize.bytes >> 20) MiB) for \(name)")
                    } catch {
                        Diagnostics.note("the working set was recorded but not stored: \(error)")
                    }
                }
            }
            return try LazyFill(regions: regions, source: source.pages, clusterPages: clusterPages, recorder: recorder)
        }
        return try LazyFill(regions: regions, source: source.pages, clusterPages: clusterPages, prefetch: workingSet)
    }

    /// Backings for the regions the request puts in files of their own.
    static func regionBackings(_ request: RestoreRequest, shapes: [SnapshotRegionShape]) throws(VMMError) -> [String: RegionBacking] {
        var backings: [String: RegionBacking] = [:]
        let known = shapes.map(\.name)
        if let display = request.display {
            guard known.contains(Machine.framebufferRegionName) else { throw .invalidRequest("--display: the snapshot's VM has no display") }
            do { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) } catch { throw .invalidRequest(error.description) }
        }
        for (name, path) in request.sharedMaps.sorted(by: { $0.key < $1.key }) {
            guard known.contains(name) else { throw .invalidRequest(GuestMemoryError.unknownRegion(name: name, known: known).description) }
            backings[name] = .sharedFile(path: path, overwrite: request.replaceSharedMaps)
        }
        if let hugetlbfs = request.hugetlbfs { backings["ram"] = .hugetlbfs(directory: hugetlbfs) }
        return backings
    }
}

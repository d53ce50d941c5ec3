import LinuxSystem
import ArgumentParser
import ControlAPI
import GuestMemory
import Machine
import Paging
import SnapshotFormat
import Transport

/// `engram restore SNAPSHOT`: starts a VM from a snapshot (and its diff parents) where it left off.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Start a VM from a snapshot; the guest continues where it was.",
        discussion: """
            --memory copy reads every stored page into fresh memfd regions (checking each page's CRC) before the guest runs. \
            --memory map maps the snapshot copy-on-write: nothing is read up front and VMs restored from one snapshot share \
            its page cache. --memory lazy serves each first touch through userfaultfd while a background pass fills the rest. \
            map and lazy do not read every page up front; --verify checks every page's CRC first (lazy checks each page as it \
            is served either way). SNAPSHOT may be tcp://HOST:PORT of an `engram serve` (with --secret-file): copy fetches \
            every page first, lazy fetches each page on first touch and streams the rest. --record-working-set records the \
            pages the guest touches in its first seconds beside the snapshot; later lazy restores fetch them at resume.
            """
    )

    @Argument(help: "The snapshot file (a full snapshot, or a diff whose parents are in its directory), or tcp://HOST:PORT of a page server.")
    var snapshot: String
    @Option(help: "How memory comes back: copy, map or lazy.") var memory: RestoreMode = .map
    @Flag(help: "Check every stored page's CRC before the guest runs.") var verify = false
    @Flag(help: ArgumentHelp(
        "Log the guest's writes from the start, so `engram snapshot --diff` can write a diff whose parent is SNAPSHOT.",
        discussion: "Off by default, as in Firecracker: dirty logging slows the guest's first write to each page."))
    var trackDirtyPages = false
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region (copy and lazy modes).") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: "Put the restored framebuffer in this display file (copy and lazy modes), for engram display.")
    var display: String?
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?
    @Option(help: "The page server's shared secret: a file of at least 16 bytes that only its owner may read.") var secretFile: String?
    @Option(help: "Seconds to keep reconnecting to a page server that went away before the VM gives up.") var reconnectTimeout = 300
    @Option(help: ArgumentHelp(
        "Record the pages the guest touches in its first SECONDS as the snapshot's working set (lazy only).",
        discussion: "The background fill waits meanwhile, so that every touch is seen.", valueName: "seconds"))
    var recordWorkingSet: Double?
    @Option(help: ArgumentHelp(
        "Lazy: a fault on a page next to the previous fault brings in its aligned group of this many pages (1 to 512).",
        discussion: "Default 16 from a local file; 1 from a page server, where the background fill reads ahead of each fault instead."))
    var faultClusterPages: Int?
    @Flag(inversion: .prefixedNo, help: "Fetch the snapshot's working set in one transfer at resume, if one was recorded (lazy only).")
    var prefetch = true
    @OptionGroup var store: ObjectStoreOptions
    @Option(help: "s3://: the host's chunk cache, shared by restores (default ~/.cache/engram/chunks).") var chunkCache: String?
    @Option(help: "s3://: the chunk cache's bound, bytes or with K/M/G suffix.") var chunkCacheSize = ByteSize(argument: "8G")!

    func validate() throws {
        if ObjectStoreOptions.isObjectStore(snapshot) {
            guard memory != .map else {
                throw ValidationError("--memory map needs a local snapshot file; restore from an object store with --memory lazy or copy")
            }
            guard !verify else { throw ValidationError("--verify checks local snapshot files; chunks from an object store are checked as they arrive") }
            guard !trackDirtyPages else { throw ValidationError("--track-dirty-pages needs a local snapshot file as the diff parent") }
        } else if chunkCache != nil {
            throw ValidationError("--chunk-cache goes with an s3:// snapshot")
        }
        if RestoreOrigin.isRemote(snapshot) {
            guard memory != .map else {
                throw ValidationError("--memory map needs a local snapshot file; restore from a page server with --memory lazy or copy")
            }
            guard !verify else { throw ValidationError("--verify checks local snapshot files; pages from a page server are checked as they arrive") }
            guard !trackDirtyPages else { throw ValidationError("--track-dirty-pages needs a local snapshot file as the diff parent") }
            guard secretFile != nil else { throw ValidationError("a page server needs --secret-file (the secret `engram serve` was given)") }
        }
        if let recordWorkingSet {
            guard memory == .lazy else { throw ValidationError("--record-working-set needs --memory lazy") }
            guard recordWorkingSet > 0 && recordWorkingSet <= 600 else {
                throw ValidationError("--record-working-set \(recordWorkingSet): expected 0 to 600 seconds")
            }
        }
        if let faultClusterPages, !(1...512).contains(faultClusterPages) {
            throw ValidationError("--fault-cluster-pages \(faultClusterPages): expected 1 to 512")
        }
        if sharedMaps != nil && memory == .map {
            throw ValidationError("--shared-maps needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself")
        }
        if display != nil && memory == .map {
            throw ValidationError("--display needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself")
        }
    }

    func run() throws {
        let started = ContinuousClock.now
        TerminationSignals.block()
        let origin: RestoreOrigin
        if RestoreOrigin.isRemote(snapshot) {
            origin = try RestoreOrigin(server: snapshot, secretFile: secretFile!, reconnectTimeoutSeconds: reconnectTimeout)
        } else if ObjectStoreOptions.isObjectStore(snapshot) {
            origin = try RestoreOrigin(objectStore: snapshot, store: store, cacheDirectory: chunkCache, cacheBytes: chunkCacheSize.bytes)
        } else {
            do {
                let chain = try SnapshotChain(path: snapshot)
                if verify { try chain.verifyAllPages() }
                origin = RestoreOrigin(chain: chain, name: snapshot)
            } catch {
                throw CommandFailure(error.description)
            }
        }
        // The state decodes on another thread while KVM registers the memory slots.
        let snapshot = snapshot
        let decoding = BackgroundWork { () throws(MachineError) in try MachineStateRecord.decode(origin.state, snapshotPath: snapshot) }
        // The working set loads meanwhile too, so the fill can claim it before the guest runs.
        let source = origin.source
        let workingSet = memory == .lazy && prefetch && recordWorkingSet == nil
            ? BackgroundWork { () -> WorkingSet? in
                do { return try source.loadWorkingSet() } catch {
                    Diagnostics.note("restoring without a working-set prefetch: \(error)")
                    return nil
                }
            }
            : nil
        let backings = try regionBackings(origin.shapes)
        let machine: Machine
        do {
            // A copy reads all of memory: learn first whether the state is usable at all.
            if memory == .copy { _ = try decoding.result() }
            let regions: [GuestRegion]
            switch memory {
            case .copy: regions = try SnapshotMemoryLoader.copy(origin.source, shapes: origin.shapes, backings: backings)
            case .map: regions = try SnapshotMemoryLoader.map(origin.chain!)
            case .lazy: regions = try SnapshotMemoryLoader.empty(shapes: origin.shapes, backings: backings)
            }
            let memoryMap = try Machine.restoredMemory(regions)
            let shell = try Machine.prepareShell(memory: memoryMap)
            machine = try Machine(restoring: try decoding.result(), snapshotRegions: origin.shapes, memory: memoryMap, shell: shell,
                                  consoleLogPath: consoleLog)
            // A lazy restore's header page may not be here yet; the others name this VM's socket now.
            if memory != .lazy { machine.setDisplayControlSocket(apiSocket.map(SnapshotCommand.absolute) ?? "") }
            // The restored snapshot becomes the parent of this VM's next diff snapshot.
            if trackDirtyPages, let chain = origin.chain { try machine.adoptSnapshotBase(path: chain.path) }
        } catch let error as MemoryLoadError {
            throw CommandFailure(error.description)
        } catch let error as MachineError {
            throw CommandFailure(error.description)
        }
        let fill = memory == .lazy ? try lazyFill(machine.memory.regions, origin, prefetch: workingSet?.result()) : nil
        let report = RestoreReport(snapshot: snapshot, mode: memory.rawValue, chainLength: origin.fileCount)
        let controller = MachineController(
            machine: machine, liveUpdate: LiveUpdateSession(apiSocket: apiSocket, consoleLogPath: consoleLog), restore: report,
            lazyFill: fill)
        try MachineSession.run(
            machine, controller: controller, setup: MachineSession.Setup(apiSocket: apiSocket),
            beforeStart: {
                if let fill {
                    try fill.start { message in machine.finish(.memoryFailure(message)) }
                    machine.setMemoryFillWait { fill.waitUntilFilled() }
                }
                report.finished(after: ContinuousClock.now - started)
                let files = origin.fileCount == 1 ? "1 file" : "\(origin.fileCount) files"
                Diagnostics.note("restored \(snapshot) (\(origin.chain == nil ? "page server" : files), \(memory.rawValue)) in \(report.millisecondsText)")
            },
            afterEnd: { fill?.stop() })
    }

    /// The lazy pager, prefetching the snapshot's working set or recording a new one.
    private func lazyFill(_ regions: [GuestRegion], _ origin: RestoreOrigin, prefetch workingSet: WorkingSet?) throws -> LazyFill {
        if let seconds = recordWorkingSet {
            let name = origin.name
            let source = origin.source
            let recorder = WorkingSetRecorder(milliseconds: UInt64(seconds * 1000), fingerprint: origin.fingerprint) { set in
                do {
                    try source.storeWorkingSet(set)
                    Diagnostics.note("recorded a working set of \(set.pages.count) pages (\(set.pages.count * 4096 >> 20) MiB) for \(name)")
                } catch {
                    Diagnostics.note("the working set was recorded but not stored: \(error)")
                }
            }
            return try LazyFill(regions: regions, source: origin.source, clusterPages: clusterPages(origin), recorder: recorder)
        }
        return try LazyFill(regions: regions, source: origin.source, clusterPages: clusterPages(origin), prefetch: workingSet)
    }

    /// One page per fault from a page server: a request per page is cheap there and its answer
    /// comes sooner, while the fill reads ahead of each fault; local files, a cluster.
    private func clusterPages(_ origin: RestoreOrigin) -> Int {
        faultClusterPages ?? (RestoreOrigin.isRemote(origin.name) ? 1 : 16)
    }

    private func regionBackings(_ shapes: [SnapshotRegionShape]) throws -> [String: RegionBacking] {
        var backings: [String: RegionBacking] = [:]
        let known = shapes.map(\.name)
        if let display {
            guard known.contains(Machine.framebufferRegionName) else { throw CommandFailure("--display: the snapshot's VM has no display") }
            do { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) } catch { throw CommandFailure(error.description) }
        }
        guard let sharedMaps else { return backings }
        for name in sharedMaps.regionNames {
            guard known.contains(name) else { throw CommandFailure(GuestMemoryError.unknownRegion(name: name, known: known).description) }
            backings[name] = .sharedFile(path: sharedMaps.path(for: name), overwrite: force)
        }
        return backings
    }
}

extension RestoreMode: ExpressibleByArgument {}

import ArgumentParser
import ControlAPI
import GuestMemory
import Machine
import Paging
import SnapshotFormat

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
            is served either way).
            """
    )

    @Argument(help: "The snapshot file (a full snapshot, or a diff whose parents are in its directory).") var snapshot: String
    @Option(help: "How memory comes back: copy, map or lazy.") var memory: RestoreMode = .map
    @Flag(help: "Check every stored page's CRC before the guest runs.") var verify = false
    @Flag(help: ArgumentHelp(
        "Log the guest's writes from the start, so `engram snapshot --diff` can write a diff whose parent is SNAPSHOT.",
        discussion: "Off by default, as in Firecracker: dirty logging slows the guest's first write to each page."))
    var trackDirtyPages = false
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region (copy and lazy modes).") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?

    func validate() throws {
        if sharedMaps != nil && memory == .map {
            throw ValidationError("--shared-maps needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself")
        }
    }

    func run() throws {
        let started = ContinuousClock.now
        TerminationSignals.block()
        let chain: SnapshotChain
        do {
            chain = try SnapshotChain(path: snapshot)
            if verify { try chain.verifyAllPages() }
        } catch {
            throw CommandFailure(error.description)
        }
        // The state decodes on another thread while KVM registers the memory slots.
        let decoding = BackgroundWork { () throws(MachineError) in try MachineStateRecord.decode(chain.state, snapshotPath: snapshot) }
        let backings = try regionBackings(chain)
        let machine: Machine
        do {
            // A copy reads all of memory: learn first whether the state is usable at all.
            if memory == .copy { _ = try decoding.result() }
            let regions: [GuestRegion]
            switch memory {
            case .copy: regions = try SnapshotMemoryLoader.copy(chain, backings: backings)
            case .map: regions = try SnapshotMemoryLoader.map(chain)
            case .lazy: regions = try SnapshotMemoryLoader.empty(chain, backings: backings)
            }
            let memoryMap = try Machine.restoredMemory(regions)
            let shell = try Machine.prepareShell(memory: memoryMap)
            machine = try Machine(restoring: try decoding.result(), snapshotRegions: chain.regions, memory: memoryMap, shell: shell,
                                  consoleLogPath: consoleLog)
            // The restored snapshot becomes the parent of this VM's next diff snapshot.
            if trackDirtyPages { try machine.adoptSnapshotBase(path: chain.path) }
        } catch let error as MemoryLoadError {
            throw CommandFailure(error.description)
        } catch let error as MachineError {
            throw CommandFailure(error.description)
        }
        let fill = memory == .lazy ? try LazyFill(regions: machine.memory.regions, source: chain) : nil
        let report = RestoreReport(snapshot: snapshot, mode: memory.rawValue, chainLength: chain.files.count)
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
                Diagnostics.note("restored \(snapshot) (\(chain.files.count) file\(chain.files.count == 1 ? "" : "s"), \(memory.rawValue)) in \(report.millisecondsText)")
            },
            afterEnd: { fill?.stop() })
    }

    private func regionBackings(_ chain: SnapshotChain) throws -> [String: RegionBacking] {
        var backings: [String: RegionBacking] = [:]
        guard let sharedMaps else { return backings }
        let known = chain.regions.map(\.name)
        for name in sharedMaps.regionNames {
            guard known.contains(name) else { throw CommandFailure(GuestMemoryError.unknownRegion(name: name, known: known).description) }
            backings[name] = .sharedFile(path: sharedMaps.path(for: name), overwrite: force)
        }
        return backings
    }
}

extension RestoreMode: ExpressibleByArgument {}

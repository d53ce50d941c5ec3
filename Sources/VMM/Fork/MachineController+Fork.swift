import ControlAPI
import FoundationEssentials
import Glibc
import GuestMemory
import LinuxSystem
import Machine
import SnapshotFormat
import Migration

extension MachineController {
    /// The most children one request may start.
    static let maximumForkCount = 256

    /// Live fork (PUT /vm/fork): `count` children, each its own Engram process with its own
    /// control socket and devices, start beside this VM and map its memory while the guest runs.
    /// Then the guest pauses for as long as it takes to save its state and make its memory a
    /// frozen base that this VM and every child map copy-on-write (pages nobody changes exist
    /// once on the host); each child then gets the state and starts from that instant. A child
    /// that fails is reported and, with `on_failure: "end"`, the ones that started are ended;
    /// this VM runs on either way.
    package func fork(_ request: ForkRequest) throws(VMControlError) -> ForkReport {
        try refuseDuringMigration("fork")
        try refuseDuringUpdate("fork")
        let started = MonotonicClock.nanoseconds()
        let plan = try ForkPlan(request, apiSocket: liveUpdate.apiSocket)
        let (regions, descriptors) = try forkableMemory()

        // 1. The children start and map the memory while the guest runs; reserved ones did already.
        var children = forkReserve.take(plan.count)
        for index in children.indices { children[index].assign(index, plan: plan) }
        for index in children.count..<plan.count {
            var child = ForkChildProcess(index: index, plan: plan)
            child.start(cpuCount: machine.configuration.cpuCount, regions: regions, descriptors: descriptors)
            children.append(child)
        }
        for index in children.indices { children[index].awaitReady() }
        guard children.contains(where: { $0.isReady }) else {
            ForkChildProcess.end(children)
            throw .failed(operation: "fork", reason: children.first?.error ?? "no child started")
        }

        // 2. The guest pauses only for the state, the freeze and the handover.
        let (wasRunning, pausedAt): (Bool, UInt64)
        switch pauseForUpdate() {
        case .success(let paused): (wasRunning, pausedAt) = paused
        case .failure(let refusal):
            ForkChildProcess.end(children)
            throw .conflict(reason: refusal.text)
        }
        let resumeHere = { if wasRunning { _ = self.machine.resume() } }
        let state: Data
        let record: MachineStateRecord
        let base = plan.baseSnapshot.map { (path: $0, id: SnapshotID.random()) }
        do {
            record = try machine.saveState()
            // Each child's devices are checked here (a refusal leaves the parent as it was) and given by the child itself.
            for (index, overrides) in plan.overrides.enumerated() { _ = try record.forkChild(index, overrides: overrides) }
            state = Data(try record.encodedSections())
            for region in machine.memory.regions { try region.freezeAsForkBase() }
            // This VM's diffs, like each child's, build on the base from this instant.
            if let base { try machine.adoptForkBase(path: base.path, snapshotID: base.id) }
        } catch {
            resumeHere()
            ForkChildProcess.end(children)
            throw .invalidRequest(reason: "\(error)")
        }
        // The state and the frozen memory no longer change: the parent goes on, and the children
        // start from that instant whenever they get the state.
        resumeHere()
        let paused = Double(MonotonicClock.nanoseconds() - pausedAt) / 1e6
        for index in children.indices { children[index].hand(state, devices: plan.devices[index], pausedAt: pausedAt, base: base) }

        // 3. Every child says it runs, or why not.
        for index in children.indices { children[index].awaitRunning() }
        if plan.endOnFailure, children.contains(where: { !$0.isRunning }) {
            for index in children.indices where children[index].isRunning { children[index].endStarted() }
        }
        ForkChildProcess.reapInBackground(children.compactMap(\.pid))
        let frozen = machine.memory.regions.map { region in
            if case .forkCopyOnWrite(let base) = region.backing { return "\(region.name): \(base)" }
            return region.name
        }.joined(separator: ", ")
        var report = ForkReport(
            children: children.map(\.info), base: frozen, pausedMilliseconds: paused,
            totalMilliseconds: Double(MonotonicClock.nanoseconds() - started) / 1e6)
        // 4. The base as a snapshot, from the frozen files, while every VM runs.
        if let base {
            let writing = MonotonicClock.nanoseconds()
            do {
                _ = try machine.writeForkBase(to: base.path, record: record, snapshotID: base.id)
                report.baseSnapshot = base.path
                report.baseSnapshotMilliseconds = Double(MonotonicClock.nanoseconds() - writing) / 1e6
            } catch {
                report.baseSnapshotError = "the fork's base was not written to \(base.path): \(error)"
                Diagnostics.note(report.baseSnapshotError!)
            }
        }
        Diagnostics.note("forked \(report.started) of \(plan.count) children (paused \(Double(Int(paused * 100)) / 100) ms)")
        return report
    }

    /// PUT /vm/fork/reserve: starts `count` children now, each mapping the memory and making its
    /// VM while the guest runs, to wait for the next fork (`ForkReserve`).
    package func reserveFork(_ request: ForkReserveRequest) throws(VMControlError) -> ForkReserveReport {
        try refuseDuringUpdate("reserve fork children")
        let started = MonotonicClock.nanoseconds()
        guard (1...Self.maximumForkCount).contains(request.count), forkReserve.count + request.count <= Self.maximumForkCount else {
            throw .invalidRequest(reason: "count must be 1 to \(Self.maximumForkCount - forkReserve.count) (\(forkReserve.count) reserved); got \(request.count)")
        }
        let (regions, descriptors) = try forkableMemory()
        var children = (0..<request.count).map { ForkChildProcess(reserved: forkReserve.count + $0) }
        for index in children.indices {
            children[index].start(cpuCount: machine.configuration.cpuCount, regions: regions, descriptors: descriptors)
        }
        for index in children.indices { children[index].awaitReady() }
        let ready = children.filter(\.isReady)
        let failed = children.filter { !$0.isReady }
        ForkChildProcess.reapInBackground(failed.compactMap(\.pid))
        forkReserve.add(ready)
        let errors = failed.compactMap(\.error)
        Diagnostics.note("reserved \(ready.count) of \(request.count) fork children (\(forkReserve.count) waiting)")
        return ForkReserveReport(
            reserved: forkReserve.count, started: ready.count, pids: ready.compactMap(\.pid), milliseconds: Double(MonotonicClock.nanoseconds() - started) / 1e6,
            errors: errors.isEmpty ? nil : errors)
    }

    /// Refuses `operation` between an update's acceptance and its end: the update hands the new
    /// VMM the memory descriptors it found when accepted, which a fork would freeze under it
    /// (the new VMM would write into the children's base).
    private func refuseDuringUpdate(_ operation: String) throws(VMControlError) {
        guard liveUpdate.isUpdating else { return }
        throw .conflict(reason: "an update of this VM is under way; \(operation) once it has ended")
    }

    /// This VM's memory as the children map it, or why it cannot be frozen and shared.
    private func forkableMemory() throws(VMControlError) -> (regions: [InheritedRegion], descriptors: [CInt]) {
        guard machine.configuration.display == nil else {
            throw .conflict(reason: "a VM with a display cannot fork: its framebuffer is shared with the display process")
        }
        guard machine.waitForMemoryFill() else { throw .conflict(reason: "the lazy restore's memory fill failed; this VM cannot fork") }
        for region in machine.memory.regions where region.fileDescriptor == nil {
            if case .forkCopyOnWrite = region.backing {
                throw .conflict(reason: "region \(region.name) is already copy-on-write over a fork's base: snapshot this VM and restore it "
                    + "(--memory copy or lazy) to fork it again")
            }
            throw .conflict(reason: "region \(region.name) is \(region.backing.kindName) memory, which cannot be frozen and shared: "
                + "fork a VM whose memory is a memfd or a file (engram run's default, restore --memory copy or lazy)")
        }
        let regions = machine.memory.regions.map { region in
            InheritedRegion(name: region.name, sizeInBytes: region.sizeInBytes, backing: .memfd, descriptor: CInt(0))
        }
        return (regions, machine.memory.regions.compactMap(\.fileDescriptor))
    }
}

/// A checked fork request: how many children, their sockets and console logs, their devices.
struct ForkPlan {
    let count: Int
    let prefix: String
    let overrides: [DeviceOverrides]
    /// The overrides as given, for the children to parse again.
    let devices: [ForkChildDevices]
    let endOnFailure: Bool
    /// Where the frozen base is written as a snapshot, if asked.
    let baseSnapshot: String?

    init(_ request: ForkRequest, apiSocket: String?) throws(VMControlError) {
        guard (1...MachineController.maximumForkCount).contains(request.count) else {
            throw .invalidRequest(reason: "count must be 1 to \(MachineController.maximumForkCount); got \(request.count)")
        }
        count = request.count
        switch request.onFailure ?? "keep" {
        case "keep": endOnFailure = false
        case "end": endOnFailure = true
        case let other: throw .invalidRequest(reason: "on_failure must be keep or end; got \(other)")
        }
        guard (request.children?.count ?? 0) <= request.count else {
            throw .invalidRequest(reason: "\(request.children?.count ?? 0) children described for a fork of \(request.count)")
        }
        let defaultPrefix = apiSocket.map { ($0.hasSuffix(".sock") ? String($0.dropLast(5)) : $0) + "-child" }
        guard let prefix = request.apiSocketPrefix ?? defaultPrefix, !prefix.isEmpty, !prefix.contains("\0") else {
            throw .invalidRequest(reason: "api_socket_prefix must name where the children's sockets go (this VM has no control socket to derive it from)")
        }
        let absolute = try Self.inExistingDirectory(prefix, option: "api_socket_prefix")
        self.prefix = absolute
        for index in 0..<count {
            for path in ["\(absolute)-\(index).sock", "\(absolute)-\(index).console"] where FileStatus(path: path) != nil {
                throw .invalidRequest(reason: "\(path) exists already; remove it or choose another api_socket_prefix")
            }
        }
        var overrides: [DeviceOverrides] = []
        var given: [ForkChildDevices] = []
        for index in 0..<count {
            let devices = request.children.flatMap { index < $0.count ? $0[index] : nil }
            given.append(devices ?? ForkChildDevices())
            do {
                overrides.append(try DeviceOverrides(parsingDisks: devices?.disks ?? [], networks: devices?.nets ?? [], vsock: devices?.vsock))
            } catch {
                throw .invalidRequest(reason: "children[\(index)]: \(error)")
            }
        }
        self.overrides = overrides
        self.devices = given
        if let path = request.baseSnapshot {
            let absolute = try Self.inExistingDirectory(path, option: "base_snapshot")
            guard FileStatus(path: absolute) == nil else {
                throw .invalidRequest(reason: "base_snapshot \(path) exists already; the base must be a new file")
            }
            baseSnapshot = absolute
        } else {
            baseSnapshot = nil
        }
    }

    /// `path` made absolute, once its directory is known to exist.
    private static func inExistingDirectory(_ path: String, option: String) throws(VMControlError) -> String {
        let absolute = PathName.absolute(path)
        let directory = FileSystem.directory(of: absolute)
        guard FileStatus(path: directory)?.kind == .directory else {
            throw .invalidRequest(reason: "\(option) \(path): the directory \(directory) does not exist")
        }
        return absolute
    }

    func socket(_ index: Int) -> String { "\(prefix)-\(index).sock" }
    func consoleLog(_ index: Int) -> String { "\(prefix)-\(index).console" }
}

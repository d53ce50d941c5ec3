import GuestMemory
import LinuxSystem
import Machine
import Paging
import SnapshotFormat
import Transport

/// The source side of a live migration, run on a thread of its own while the guest keeps
/// running: connect and authenticate, announce the plan, move memory as the mode says, stop
/// the guest, send its state, and end this VMM once the destination runs it.
///
/// Nothing is lost on failure: until the state has been sent, any error resumes the guest here
/// (it was never stopped, or only for the final pass). Once the state is out, only the
/// destination's RUNNING (the guest runs there) or its ERROR (it refused: the guest resumes
/// here) decides; a connection lost in between leaves the guest paused here, since it may be
/// running there, and says so.
package final class MigrationSource: Sendable {
    let machine: Machine
    let request: MigrationRequest
    /// What GET /vm/migrate reports.
    package let report: Locked<MigrationReport>
    let log: @Sendable (String) -> Void
    /// A post-copy's page server, stopped if the guest resumes here (it serves live memory).
    private let postcopyServer = Locked<PostcopyPageServer?>(nil)

    package init(machine: Machine, request: MigrationRequest, log: @escaping @Sendable (String) -> Void) {
        self.machine = machine
        self.request = request
        self.log = log
        var report = MigrationReport()
        report.status = "active"
        report.mode = request.mode
        report.destination = request.destinationName
        report.phase = "connecting"
        report.maximumDowntimeMilliseconds = request.maximumDowntimeMilliseconds
        if request.mode == .precopy, request.channels > 1 { report.channels = request.channels }
        self.report = Locked(report)
    }

    /// Whether the migration is still going.
    package var isActive: Bool { report.withLock { $0.status == "active" } }

    /// Runs the whole migration; true once the destination runs the guest (the caller then
    /// ends this VMM with `.migrated`), false if it runs on (or stays paused) here.
    package func run() -> Bool {
        let started = ContinuousClock.now
        var stateSent = false, runningReceived = false
        var pausedHere = false
        var link: MigrationLink?
        do {
            let connected = try MigrationLink.connect(to: request.destination, security: request.security)
            link = connected
            connected.setReceiveTimeout(milliseconds: MigrationLink.stallMilliseconds)
            let outcome = try migrate(over: connected, started: started, stateSent: &stateSent, runningReceived: &runningReceived,
                                      pausedHere: &pausedHere)
            update { report in
                report.status = "completed"
                report.phase = "done"
                report.downtimeMilliseconds = outcome.downtime
                report.totalMilliseconds = Self.milliseconds(since: started)
                if request.mode != .postcopy { report.bytesSent = outcome.bytesSent ?? connected.bytesSent }
            }
            log("migrated to \(request.destinationName) (\(request.mode.rawValue)) in \(Self.format(Self.milliseconds(since: started))) ms, downtime \(Self.format(outcome.downtime)) ms, \(report.withLock { $0.bytesSent }) bytes sent")
            return true
        } catch {
            link?.close()
            fail(error, stateSent: stateSent, runningReceived: runningReceived, pausedHere: pausedHere, started: started)
            return false
        }
    }

    /// The milliseconds the guest was stopped, once the destination runs it; pre-copy: the bytes
    /// sent on every connection.
    private struct Outcome {
        var downtime: Double
        var bytesSent: UInt64?
    }

    private func migrate(
        over link: MigrationLink, started: ContinuousClock.Instant, stateSent: inout Bool, runningReceived: inout Bool, pausedHere: inout Bool
    ) throws -> Outcome {
        let regions = machine.memory.regions
        let shapes = regions.map { region in
            SnapshotRegionShape(name: region.name, sizeInBytes: region.sizeInBytes, placements: machine.memory.placements(of: region))
        }
        // Pre-copy tells where data is, so the destination allocates those pages before the first pass.
        var dataPages: [String: [Range<PageIndex>]] = [:]
        if request.mode == .precopy {
            for region in regions {
                let ranges = region.dataPages()
                if ranges.count <= 1 << 16 { dataPages[region.name] = ranges }
            }
        }
        // The destination checks the machine's configuration, CPU features and disks before any page is sent.
        let channels = request.mode == .precopy && request.channels > 1 ? request.channels : 1
        let token = channels > 1 ? (0..<MigrationProtocol.channelTokenLength).map { _ in UInt8.random(in: 0...255) } : []
        let plan = MigrationPlan(mode: request.mode, shapes: shapes, paths: try sharedPaths(), dataPages: dataPages, preview: try machine.preview().encoded(),
                                 channels: channels, channelToken: token)
        try link.sendPlan(plan)
        update { $0.phase = "waiting for the destination" }
        try link.receiveReady()
        // Channels connect only now: the destination has stopped taking control connections.
        let pages = request.mode == .precopy ? try pageStream(over: link, channels: channels, token: token, regions: regions) : nil
        defer { (pages as? PageChannels)?.close() }
        let leftDirty = if let pages { try copyWhileRunning(pages, regions: regions) } else { [String: PageBitmap]() }

        // Stop-and-copy: the guest stops here; downtime runs from now until the destination runs it.
        update { $0.phase = "stopping" }
        guard machine.pause() else { throw MigrationFailure("the VM is \(machine.runState); only a running VM can be migrated") }
        pausedHere = true
        let pausedAt = ContinuousClock.now
        if let pages {
            try pages.send(dirty: try machine.migrationDirtyPages().merging(leftDirty) { Self.union($0, $1) })
            try pages.endPass(report.withLock { $0.passes } + 1)
            (pages as? PageChannels)?.close()  // every page is out: the destination's channel threads may end
            update { $0.pagesSent = pages.pagesSent; $0.zeroPagesSent = pages.zeroPagesSent }
        }
        var pageServer: PostcopyPageServer?
        if request.mode == .postcopy {
            // Served from now: the data pages are learnt from the backings' holes as they are now.
            let server = try PostcopyPageServer(machine: machine, shapes: shapes, security: request.security,
                                                ipv6: link.peer.hasPrefix("["), log: log)
            pageServer = server
            postcopyServer.withLock { $0 = server }
            try link.sendPageServer(port: server.port, fingerprint: server.fingerprint)
        }
        defer { if stateSent == false { pageServer?.stop() } }
        let state = try machine.encodedMachineState()
        try link.sendState(state)
        stateSent = true
        update { $0.phase = "waiting for the destination to run the guest" }
        try link.receiveRunning()
        runningReceived = true
        let downtime = Self.milliseconds(since: pausedAt)
        update { $0.downtimeMilliseconds = downtime }
        if let pageServer {
            // The guest runs there; it fetches what it touches from here until it has everything.
            update { $0.phase = "serving pages" }
            link.setReceiveTimeout(milliseconds: 0)
            try link.receiveAllPagesPresent()
            pageServer.stop()
            update { $0.bytesSent = link.bytesSent + pageServer.bytesSent }
        }
        return Outcome(downtime: downtime, bytesSent: pages?.bytesSent)
    }

    /// Passes over memory while the guest runs: everything once, then what it dirtied, until
    /// what is left fits the downtime target at the bandwidth the last pass reached. Returns the
    /// pages the last look found dirty, for the stop-and-copy.
    private func copyWhileRunning(_ sender: any PageStream, regions: [GuestRegion]) throws -> [String: PageBitmap] {
        update { $0.phase = "copying" }
        try machine.startMigrationDirtyLog()
        var passStart = ContinuousClock.now
        var lastCollect = passStart
        var bytesBefore = sender.bytesSent
        sender.progress = { [self] in
            update { report in
                report.bytesSent = sender.bytesSent
                report.pagesSent = sender.pagesSent
                report.zeroPagesSent = sender.zeroPagesSent
            }
        }
        update { $0.passes = 1 }
        // Pages found dirty during the first pass: skipped by it when still ahead, sent by the next.
        var dirtiedDuringFirstPass: [String: PageBitmap] = [:]
        try sender.sendAll(dirty: &dirtiedDuringFirstPass, refreshPages: 16384) { try machine.migrationDirtyPages() }
        try sender.endPass(1)
        var pass: UInt32 = 1
        var previousRemaining: UInt64?
        while true {
            let seconds = max(Self.milliseconds(since: passStart) / 1000, 1e-6)
            let bandwidth = Double(sender.bytesSent - bytesBefore) / seconds
            let dirty = try machine.migrationDirtyPages().merging(dirtiedDuringFirstPass) { Self.union($0, $1) }
            dirtiedDuringFirstPass = [:]
            let remaining = dirty.values.reduce(UInt64(0)) { $0 + $1.setCount }
            let rate = Double(remaining) / max(Self.milliseconds(since: lastCollect) / 1000, 1e-6)
            lastCollect = ContinuousClock.now
            let expected = bandwidth > 0 ? Double(remaining) * Double(PageSize.bytes) / bandwidth * 1000 : .infinity
            update { report in
                report.remainingPages = remaining
                report.bandwidthBytesPerSecond = bandwidth
                report.dirtyPagesPerSecond = rate
                report.expectedDowntimeMilliseconds = expected
                report.bytesSent = sender.bytesSent
                report.pagesSent = sender.pagesSent
                report.zeroPagesSent = sender.zeroPagesSent
            }
            // Stop once the rest fits the target and another pass would no longer halve it (or it is
            // already down to a couple of milliseconds): passes are cheap while they shrink the rest,
            // and every page they take off is downtime saved.
            let fits = expected <= request.maximumDowntimeMilliseconds
            let shrinking = previousRemaining.map { remaining < $0 / 2 } ?? true
            previousRemaining = remaining
            if fits && (!shrinking || expected <= Self.negligibleDowntimeMilliseconds) || pass >= request.maximumPasses {
                if pass >= request.maximumPasses { log("migration: pass \(pass) still leaves \(remaining) dirty pages; stopping the guest anyway") }
                return dirty
            }
            pass += 1
            update { $0.passes = pass }
            passStart = ContinuousClock.now
            bytesBefore = sender.bytesSent
            try sender.send(dirty: dirty)
            try sender.endPass(pass)
        }
    }

    /// The pre-copy's pages: on the control connection, or on `channels` page channels beside it,
    /// which the destination takes once it has sent READY. (Before, its wait for the control
    /// connection could take a channel for a control connection and end it.)
    private func pageStream(over link: MigrationLink, channels: Int, token: [UInt8], regions: [GuestRegion]) throws -> any PageStream {
        guard channels > 1 else { return PageSender(link: link, regions: regions) }
        var links: [MigrationLink] = []
        do {
            for index in 0..<channels {
                links.append(try MigrationLink.connectChannel(to: request.destination, security: request.security, token: token, index: index))
            }
            for channel in links { channel.setReceiveTimeout(milliseconds: MigrationLink.stallMilliseconds) }
            return try PageChannels(control: link, links: links, regions: regions)
        } catch {
            for channel in links { channel.close() }
            // An Engram from before page channels reads the plan without them and never takes one.
            throw MigrationFailure("page channel \(links.count) of \(channels): \(error) (the destination must be an Engram that takes page channels)")
        }
    }

    /// Shared mode: every region must be a file both VMMs can map.
    private func sharedPaths() throws -> [String: String] {
        guard request.mode == .shared else { return [:] }
        var paths: [String: String] = [:]
        for region in machine.memory.regions {
            switch region.backing {
            case .file(let path), .sharedFile(let path, _): paths[region.name] = path
            default:
                throw MigrationFailure("shared migration needs every region in a named shared file (--ram-file or --shared-maps); region \(region.name) is \(region.backing.kindName)")
            }
        }
        return paths
    }

    private func fail(_ error: any Error, stateSent: Bool, runningReceived: Bool, pausedHere: Bool, started: ContinuousClock.Instant) {
        let message = "\(error)"
        let refused = if case TransportError.refused = error { true } else { false }
        let ambiguous = !Self.guestResumesHere(stateSent: stateSent, runningReceived: runningReceived, refused: refused)
        machine.endMigrationDirtyLog()
        if pausedHere && !ambiguous {
            postcopyServer.withLock { $0 }?.stop()
            _ = machine.resume()
        }
        let text = ambiguous
            ? "the connection to \(request.destinationName) ended after the guest's state was sent (\(message)); the destination may be running the guest, so it stays paused here: resume it (PUT /vm/resume) only if the destination does not run it"
            : "migration to \(request.destinationName) failed: \(message); the guest runs on here"
        update { report in
            report.status = "failed"
            report.phase = ambiguous ? "paused, outcome unknown" : "failed"
            report.error = text
            report.totalMilliseconds = Self.milliseconds(since: started)
        }
        log(text)
    }

    private func update(_ body: (inout MigrationReport) -> Void) { report.withLock { body(&$0) } }

    /// Whether a failed migration's guest runs on here: always before its state was sent; after,
    /// only if the destination refused it (ERROR) before saying it runs it. Once RUNNING has come,
    /// the guest runs there whatever follows (an ERROR then too), and a lost connection leaves
    /// it unknown: it stays paused here rather than run twice.
    package static func guestResumesHere(stateSent: Bool, runningReceived: Bool, refused: Bool) -> Bool {
        !stateSent || (refused && !runningReceived)
    }

    /// A rest this quick to send is not worth another pass.
    static let negligibleDowntimeMilliseconds = 2.0

    static func union(_ a: PageBitmap, _ b: PageBitmap) -> PageBitmap {
        var result = a
        result.formUnion(b)
        return result
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        (ContinuousClock.now - start).inMilliseconds
    }

    static func format(_ milliseconds: Double) -> String {
        let tenths = (milliseconds * 10).rounded() / 10
        return "\(tenths)"
    }
}

/// A migration that cannot go on, in words for the user.
struct MigrationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

import Devices
import GuestMemory
import LinuxSystem
import Machine
import Migration
import Paging
import Transport

/// Everything `engram receive` asks of a migration's destination.
package struct ReceiveRequest: Sendable {
    /// HOST:PORT to listen on (port 0 picks a free one).
    package var listen: String
    /// The shared secret, certificates or plaintext the source must match.
    package var security: TransportSecurity.Options
    /// Region name → a file to create (mode 0600) for it.
    package var sharedMaps: [String: String] = [:]
    package var replaceSharedMaps = false
    /// Main RAM in an unlinked file of this hugetlbfs mount (pre- and post-copy).
    package var hugetlbfs: String?
    /// Shared mode: the directory the source's memory files must be in; nil refuses shared mode
    /// (a source names the files this host opens and writes).
    package var sharedDirectory: String?
    package var display: String?
    package var consoleLog: String?
    package var apiSocket: String?
    /// Post-copy: seconds to keep reconnecting to a source page server that went away.
    package var reconnectTimeoutSeconds = 300
    /// Disk files, taps and a vsock socket replacing the source's (the rest are opened at the
    /// source's paths and names; disks only inside `diskDirectory`).
    package var overrides = DeviceOverrides()
    /// Where disks the source names (and no override replaces) may be; nil: each needs a --disk.
    package var diskDirectory: String?

    package init(listen: String, security: TransportSecurity.Options) {
        self.listen = listen
        self.security = security
    }
}

/// The destination of a live migration: waits for an authenticated source, builds the VM it
/// sends, runs it, and (post-copy) fetches the rest of memory from the source's page server.
package enum VMReceive {
    /// Waits for a migration and runs the guest it brings to its end; returns the exit status.
    package static func run(_ request: ReceiveRequest) throws(VMMError) -> Int32 {
        let security: TransportSecurity
        let listener: ListeningSocket
        if let directory = request.sharedDirectory, FileStatus(path: directory)?.kind != .directory {
            throw .invalidRequest("--shared-dir \(directory): not a directory")
        }
        if let directory = request.diskDirectory, FileStatus(path: directory)?.kind != .directory {
            throw .invalidRequest("--disk-dir \(directory): not a directory")
        }
        var request = request
        request.overrides.sourceDisks = .onlyIn(directory: request.diskDirectory)
        do {
            security = try TransportSecurity.load(request.security)
            let endpoint = try Endpoint(parsing: request.listen, listening: true)
            listener = try ListeningSocket(endpoint: endpoint)
            Diagnostics.note("migration connections use \(security.summary)")
            Diagnostics.note("waiting for a migration on \(Endpoint.describe(host: endpoint.host, port: listener.boundPort))")
        } catch {
            throw .failed("\(error)")
        }
        let arrival: MigrationArrival
        do {
            arrival = try MigrationArrival.receive(on: listener, security: security, backings: backings(request), sharedDirectory: request.sharedDirectory,
                                                   overrides: request.overrides, consoleLogPath: request.consoleLog,
                                                   log: { Diagnostics.note($0) })
        } catch let error as VMMError {
            throw error
        } catch {
            throw .failed("\(error)")
        }
        TerminationSignals.block()
        let machine = arrival.machine
        let link = arrival.link
        // Until the guest runs here, a failure goes back to the source as a refusal, so the source
        // resumes it there (a closed link alone leaves it paused there, not knowing).
        var running = false
        func refuse(_ error: VMMError) { link.connection.sendError("the destination cannot run the guest: \(error)") }
        let fill: LazyFill?
        do {
            fill = try arrival.pageServer.map { (server) throws(VMMError) in try postcopyFill(arrival, server: server, security: security, request) }
        } catch {
            refuse(error)
            link.close()
            throw error
        }
        // The display file names this VM's socket: now, or once post-copy's faults are served.
        let displaySocket = request.apiSocket.map(PathName.absolute) ?? ""
        if fill == nil { machine.setDisplayControlSocket(displaySocket) }
        let controller = MachineController(
            machine: machine, liveUpdate: LiveUpdateSession(apiSocket: request.apiSocket, consoleLogPath: request.consoleLog), lazyFill: fill)
        return try MachineSession.run(
            machine, controller: controller, setup: MachineSession.Setup(apiSocket: request.apiSocket),
            beforeStart: { () throws(VMMError) in
                try fill?.start(for: machine) { machine.setDisplayControlSocket(displaySocket) }
            },
            afterStart: {
                running = true
                // The guest runs here now; the source may end (or, post-copy, serve until we have it all).
                do { try link.sendRunning() } catch { Diagnostics.note("the source did not hear that the guest runs here: \(error)") }
                Diagnostics.note("migration from \(link.peer) (\(arrival.plan.mode.rawValue)) arrived: \(arrival.pagesReceived) pages; the guest runs here")
                if let fill { reportWhenFilled(fill, link: link) }
            },
            afterEnd: {
                fill?.stop()
                if !running { refuse(.failed("it did not start")) }
                link.close()
            })
    }

    /// Post-copy: a lazy pager fed by the source's page server, reached at the source's address.
    private static func postcopyFill(
        _ arrival: MigrationArrival, server: (port: UInt16, fingerprint: UInt64), security: TransportSecurity, _ request: ReceiveRequest
    ) throws(VMMError) -> LazyFill {
        let remote: RemotePageSource
        let endpoint: Endpoint
        do {
            endpoint = try Endpoint(parsing: Endpoint.describe(host: host(of: arrival.link.peer), port: server.port))
            let connector = PageServerConnector(
                endpoint: endpoint, security: security, reconnectTimeoutMilliseconds: request.reconnectTimeoutSeconds * 1000,
                log: { Diagnostics.note($0) })
            remote = try RemotePageSource(connector: connector)
        } catch {
            throw .failed("post-copy cannot reach the source's page server: \(error)")
        }
        guard remote.manifest.fingerprint == server.fingerprint,
              remote.manifest.regions.map(\.name) == arrival.plan.regions.map(\.name) else {
            throw .failed("the page server at \(endpoint) is not the one the migration named")
        }
        return try LazyFill(regions: arrival.machine.memory.regions, source: remote, clusterPages: 1)
    }

    /// Tells the source, once every page is here, that it may go.
    private static func reportWhenFilled(_ fill: LazyFill, link: MigrationLink) {
        do {
            try NamedThread.spawnDetached(name: "engram-postcopy-done", role: .migration) {
                guard fill.waitUntilFilled() else { return }
                do { try link.sendAllPagesPresent() } catch { Diagnostics.note("the source did not hear that every page arrived: \(error)") }
            }
        } catch {
            Diagnostics.note("cannot watch the post-copy fill: \(error)")
        }
    }

    /// "10.0.0.1" from "10.0.0.1:5000", "::1" from "[::1]:5000".
    package static func host(of peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        let host = peer[..<colon]
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host)
    }

    static func backings(_ request: ReceiveRequest) throws(VMMError) -> [String: RegionBacking] {
        var backings: [String: RegionBacking] = [:]
        if let display = request.display {
            do { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) } catch { throw .invalidRequest(error.description) }
        }
        for (name, path) in request.sharedMaps { backings[name] = .sharedFile(path: path, overwrite: request.replaceSharedMaps) }
        if let hugetlbfs = request.hugetlbfs {
            guard request.sharedMaps["ram"] == nil else { throw .invalidRequest("choose one backing for main RAM: --hugetlbfs or --shared-maps ...:ram") }
            backings["ram"] = .hugetlbfs(directory: hugetlbfs)
        }
        return backings
    }
}

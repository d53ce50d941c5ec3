import LinuxSystem
import ArgumentParser
import GuestMemory
import Machine
import Migration
import Paging
import Transport

/// `engram receive --listen HOST:PORT`: waits for a live migration and runs the guest it brings.
struct ReceiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Wait for a live migration (engram migrate, PUT /vm/migrate) and run the guest it brings.",
        discussion: """
            The source authenticates with the shared secret (HMAC-SHA256 both ways, as the page server). A peer without it \
            is refused and the wait goes on; a source whose stream is damaged or does not fit this host is refused with \
            an ERROR it passes on (its guest resumes there) and this command exits 1. Post-copy fetches pages from the \
            source's page server on first touch until all have arrived. docs/MIGRATION.md has the protocol.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT (port 0 picks a free one).") var listen: String
    @Option(help: "The shared secret: a file of at least 16 bytes that only its owner may read.") var secretFile: String
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region (pre- and post-copy).") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: "Put an arriving VM's framebuffer in this display file, for engram display.") var display: String?
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?
    @Option(help: "Post-copy: seconds to keep reconnecting to a source page server that went away.") var reconnectTimeout = 300

    func run() throws {
        let secret: SharedSecret
        let listener: ListeningSocket
        do {
            secret = try SharedSecret.load(path: secretFile)
            let endpoint = try Endpoint(parsing: listen, listening: true)
            listener = try ListeningSocket(endpoint: endpoint)
            Diagnostics.note("waiting for a migration on \(Endpoint.describe(host: endpoint.host, port: listener.boundPort))")
        } catch {
            throw CommandFailure("\(error)")
        }
        let arrival: MigrationArrival
        do {
            arrival = try MigrationArrival.receive(on: listener, secret: secret, backings: backings(), consoleLogPath: consoleLog,
                                                   log: { Diagnostics.note($0) })
        } catch {
            throw CommandFailure("\(error)")
        }
        TerminationSignals.block()
        let machine = arrival.machine
        let link = arrival.link
        let fill = try arrival.pageServer.map { server in try postcopyFill(arrival, server: server, secret: secret) }
        // Post-copy has not fetched the header page yet; otherwise the display file now names this VM's socket.
        if fill == nil { machine.setDisplayControlSocket(apiSocket.map(SnapshotCommand.absolute) ?? "") }
        let controller = MachineController(machine: machine, liveUpdate: LiveUpdateSession(apiSocket: apiSocket, consoleLogPath: consoleLog),
                                           lazyFill: fill)
        try MachineSession.run(
            machine, controller: controller, setup: MachineSession.Setup(apiSocket: apiSocket),
            beforeStart: {
                if let fill {
                    try fill.start { message in machine.finish(.memoryFailure(message)) }
                    machine.setMemoryFillWait { fill.waitUntilFilled() }
                }
            },
            afterStart: {
                // The guest runs here now; the source may end (or, post-copy, serve until we have it all).
                do { try link.sendRunning() } catch { Diagnostics.note("the source did not hear that the guest runs here: \(error)") }
                Diagnostics.note("migration from \(link.peer) (\(arrival.plan.mode.rawValue)) arrived: \(arrival.pagesReceived) pages; the guest runs here")
                if let fill { Self.reportWhenFilled(fill, link: link) }
            },
            afterEnd: { fill?.stop(); link.close() })
    }

    /// Post-copy: a lazy pager fed by the source's page server, reached at the source's address.
    private func postcopyFill(_ arrival: MigrationArrival, server: (port: UInt16, fingerprint: UInt64), secret: SharedSecret) throws -> LazyFill {
        do {
            let host = Self.host(of: arrival.link.peer)
            let endpoint = try Endpoint(parsing: Endpoint.describe(host: host, port: server.port))
            let connector = PageServerConnector(endpoint: endpoint, secret: secret, reconnectTimeoutMilliseconds: reconnectTimeout * 1000,
                                                log: { Diagnostics.note($0) })
            let remote = try RemotePageSource(connector: connector)
            guard remote.manifest.fingerprint == server.fingerprint,
                  remote.manifest.regions.map(\.name) == arrival.plan.regions.map(\.name) else {
                throw CommandFailure("the page server at \(endpoint) is not the one the migration named")
            }
            return try LazyFill(regions: arrival.machine.memory.regions, source: remote, clusterPages: 1)
        } catch let failure as CommandFailure {
            throw failure
        } catch {
            throw CommandFailure("post-copy cannot reach the source's page server: \(error)")
        }
    }

    /// Tells the source, once every page is here, that it may go.
    private static func reportWhenFilled(_ fill: LazyFill, link: MigrationLink) {
        do {
            try NamedThread.spawnDetached(name: "engram-postcopy-done") {
                guard fill.waitUntilFilled() else { return }
                do { try link.sendAllPagesPresent() } catch { Diagnostics.note("the source did not hear that every page arrived: \(error)") }
            }
        } catch {
            Diagnostics.note("cannot watch the post-copy fill: \(error)")
        }
    }

    /// "10.0.0.1" from "10.0.0.1:5000", "::1" from "[::1]:5000".
    static func host(of peer: String) -> String {
        guard let colon = peer.lastIndex(of: ":") else { return peer }
        let host = peer[..<colon]
        return host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : String(host)
    }

    private func backings() throws -> [String: RegionBacking] {
        var backings: [String: RegionBacking] = [:]
        if let display {
            do { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) } catch { throw CommandFailure(error.description) }
        }
        guard let sharedMaps else { return backings }
        for name in sharedMaps.regionNames { backings[name] = .sharedFile(path: sharedMaps.path(for: name), overwrite: force) }
        return backings
    }
}

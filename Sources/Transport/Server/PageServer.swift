import LinuxSystem
import Paging
import SnapshotFormat
import Synchronization

/// A page server: serves one `ServedMemory` (a snapshot chain for `engram serve`, or a paused
/// VM's live memory for a post-copy migration) — its manifest, pages and working set — to
/// restoring clients over the page protocol. One thread per connection (a restoring client
/// opens two or three: faults, background fill, prefetch), each with its own buffers, so a slow
/// or broken client holds up nobody else. Handshakes run on their own threads too, at most
/// `maximumPendingHandshakes` at once (a newer one ends the oldest), and only clients that proved
/// the secret count against `maximumConnections`: past it they are told "busy". So connections
/// that say nothing can neither fill the server nor keep a real client waiting.
package final class PageServer: Sendable {
    let memory: any ServedMemory
    let security: TransportSecurity
    let listener: ListeningSocket
    let maximumConnections: Int
    let log: @Sendable (String) -> Void
    private let connections = Atomic<Int>(0)
    private let sent = Atomic<UInt64>(0)
    /// Serialises working-set writes (PUT from several clients at once).
    let workingSetLock = Locked<Void>(())
    /// Whether `stop` was called, and the sockets of the connections being served, so `stop`
    /// can end them: a session blocked in recv or send would otherwise wait for its client.
    private let sessions = Locked<Sessions>(Sessions())

    private struct Sessions {
        var stopped = false
        var sockets: [ObjectIdentifier: StreamSocket] = [:]
    }

    package init(
        memory: any ServedMemory, security: TransportSecurity, listening endpoint: Endpoint, maximumConnections: Int = 64,
        log: @escaping @Sendable (String) -> Void
    ) throws(TransportError) {
        self.memory = memory
        self.security = security
        self.maximumConnections = maximumConnections
        self.log = log
        do { listener = try ListeningSocket(endpoint: endpoint) } catch { throw TransportError(error) }
    }

    /// `engram serve`: serves a snapshot chain.
    package convenience init(
        chain: SnapshotChain, security: TransportSecurity, listening endpoint: Endpoint, maximumConnections: Int = 64,
        log: @escaping @Sendable (String) -> Void
    ) throws(TransportError) {
        try self.init(memory: chain, security: security, listening: endpoint, maximumConnections: maximumConnections, log: log)
    }

    /// The port listened on.
    package var port: UInt16 { listener.boundPort }

    /// Connections being served now.
    package var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Bytes of replies sent to every client so far (a post-copy source reports them).
    package var bytesSent: UInt64 { sent.load(ordering: .relaxed) }

    func countSent(_ bytes: UInt64) { sent.add(bytes, ordering: .relaxed) }

    /// True once `stop` was called.
    package var isStopped: Bool { sessions.withLock { $0.stopped } }

    /// Handshakes that may wait at once before the oldest is ended for a new one.
    package static let maximumPendingHandshakes = 16

    /// Accepts and serves connections until `stop` (then returns) or until accepting fails
    /// (then throws); blocks the calling thread.
    package func run() throws(TransportError) {
        let pending = PendingHandshakes(maximum: Self.maximumPendingHandshakes)
        defer { pending.endAll() }
        while true {
            let socket: StreamSocket
            do { socket = try listener.accept() } catch {
                if isStopped { return }
                throw TransportError(error)
            }
            let connection: FramedConnection
            do { connection = try security.connection(socket, server: true) } catch {
                socket.shutdown()
                log("cannot serve \(socket.peer): \(error)")
                continue
            }
            guard register(socket) else {
                // Accepted just as `stop` shut the listener: the client is told, not left waiting.
                connection.sendError("the server is stopping")
                return
            }
            let ticket = pending.add(socket)
            do {
                try NamedThread.spawnDetached(name: "engram-serve", role: .pageServer) { [self] in
                    defer { unregister(socket) }
                    let session = ServerSession(server: self, connection: connection)
                    var admitted = false
                    let authenticated = session.authenticate { [self] in
                        guard pending.finish(ticket) else { return "the server ended this handshake" }
                        guard connections.add(1, ordering: .relaxed).newValue <= maximumConnections else {
                            connections.subtract(1, ordering: .relaxed)
                            log("turned away \(socket.peer): \(maximumConnections) connections already")
                            return "\(WireProtocol.busyMessage): this server already serves \(maximumConnections) connections; try again later"
                        }
                        admitted = true
                        return nil
                    }
                    if !admitted { _ = pending.finish(ticket) }
                    guard authenticated else {
                        if admitted { connections.subtract(1, ordering: .relaxed) }
                        return
                    }
                    session.serve()
                    connections.subtract(1, ordering: .relaxed)
                }
            } catch {
                _ = pending.finish(ticket)
                unregister(socket)
                connection.sendError("the server cannot start a thread for this connection")
                log("cannot serve \(socket.peer): \(error)")
            }
        }
    }

    /// Stops serving: `run` returns, new connections are refused, and every open connection is
    /// shut down, so its client gets a connection error at once and no session thread waits
    /// for a client forever. A post-copy source calls it once the destination has every page.
    package func stop() {
        let open = sessions.withLock { sessions in
            sessions.stopped = true
            return Array(sessions.sockets.values)
        }
        listener.shutdown()
        for socket in open { socket.shutdown() }
    }

    /// Records a connection's socket for `stop`; false if the server is stopping.
    private func register(_ socket: StreamSocket) -> Bool {
        sessions.withLock { sessions in
            guard !sessions.stopped else { return false }
            sessions.sockets[ObjectIdentifier(socket)] = socket
            return true
        }
    }

    private func unregister(_ socket: StreamSocket) {
        _ = sessions.withLock { $0.sockets.removeValue(forKey: ObjectIdentifier(socket)) }
    }

    /// The manifest as it stands (the working-set size changes when a client stores one).
    func manifest() -> SnapshotManifest {
        let pages = (try? memory.loadWorkingSet()).flatMap { $0 }.map { UInt32($0.pages.count) } ?? 0
        return SnapshotManifest(memory: memory, workingSetPages: pages)
    }
}

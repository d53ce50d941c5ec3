import Paging
import SnapshotFormat
import Synchronization

/// `engram serve`: serves one snapshot chain's manifest, pages and working set to restoring
/// clients over the page protocol. One thread per connection (a restoring client opens two or
/// three: faults, background fill, prefetch), each with its own buffers, so a slow or broken
/// client holds up nobody else; past `maximumConnections` new connections are turned away.
package final class PageServer: Sendable {
    let chain: SnapshotChain
    let secret: SharedSecret
    let listener: ListeningSocket
    let maximumConnections: Int
    let log: @Sendable (String) -> Void
    private let connections = Atomic<Int>(0)
    /// Serialises working-set writes (PUT from several clients at once).
    let workingSetLock = Mutex<Void>(())

    package init(
        chain: SnapshotChain, secret: SharedSecret, listening endpoint: Endpoint, maximumConnections: Int = 64,
        log: @escaping @Sendable (String) -> Void
    ) throws(TransportError) {
        self.chain = chain
        self.secret = secret
        self.maximumConnections = maximumConnections
        self.log = log
        listener = try ListeningSocket(endpoint: endpoint)
    }

    /// The port listened on.
    package var port: UInt16 { listener.boundPort }

    /// Connections being served now.
    package var connectionCount: Int { connections.load(ordering: .relaxed) }

    /// Accepts and serves connections until accepting fails; blocks the calling thread.
    package func run() throws(TransportError) {
        while true {
            let socket = try listener.accept()
            let connection = FramedConnection(socket: socket)
            guard connections.add(1, ordering: .relaxed).newValue <= maximumConnections else {
                connections.subtract(1, ordering: .relaxed)
                connection.sendError("\(WireProtocol.busyMessage): this server already serves \(maximumConnections) connections; try again later")
                log("turned away \(socket.peer): \(maximumConnections) connections already")
                continue
            }
            do {
                let thread = try PagingThread.spawn(name: "engram-serve") { [self] in
                    ServerSession(server: self, connection: connection).run()
                    connections.subtract(1, ordering: .relaxed)
                }
                thread.detach()
            } catch {
                connections.subtract(1, ordering: .relaxed)
                connection.sendError("the server cannot start a thread for this connection")
                log("cannot serve \(socket.peer): \(error)")
            }
        }
    }

    /// The manifest as it stands (the working-set size changes when a client stores one).
    func manifest() -> SnapshotManifest {
        let pages = (try? chain.loadWorkingSet()).flatMap { $0 }.map { UInt32($0.pages.count) } ?? 0
        return SnapshotManifest(chain: chain, workingSetPages: pages)
    }
}

import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The control API: HTTP/1.1 with JSON bodies on a Unix socket of mode 0600.
///
/// `curl --unix-socket PATH http://localhost/vm` works, as with Firecracker's and Cloud Hypervisor's
/// API sockets. One event-loop thread does the HTTP; the routes run one at a time, in arrival order,
/// on one worker thread, so a blocking VMControl call (pause) never stalls the event loop and the
/// machine never sees two control calls at once. Keep-alive and many clients are served.
///
/// Wiring: `start()` before the machine runs; after the machine has ended (for instance because a
/// client sent PUT /vm/shutdown), call `stop()` before the process exits: it writes every answer
/// still in flight, so the client of /vm/shutdown always gets its 200, then removes the socket.
package final class ControlServer: Sendable {
    /// The largest request body accepted; a longer one gets 413.
    package static let maximumBodyBytes = 64 * 1024

    /// Where the socket is served.
    package let socketPath: String
    private let router: Router
    private let lifecycle = Mutex<Lifecycle>(.notStarted)

    private enum Lifecycle {
        case notStarted
        case serving(Serving)
        case stopped
    }

    /// What a running server holds.
    private struct Serving {
        let group: MultiThreadedEventLoopGroup
        let pool: NIOThreadPool
        let listener: any Channel
        let connections: OpenConnections
        let socketIdentity: SocketFile.Identity?
    }

    /// A server that answers with `router`'s routes.
    package init(socketPath: String, router: Router) {
        self.socketPath = socketPath
        self.router = router
    }

    /// A server with every route of the control API, answered by `control`; `version` is reported by GET /version.
    package convenience init(socketPath: String, control: any VMControl, version: String) {
        self.init(socketPath: socketPath, router: Router(control: control, version: version))
    }

    /// Binds the socket (mode 0600) and starts serving; returns once clients can connect.
    ///
    /// A stale socket at the path (nothing accepts on it) is replaced; a live socket or any other
    /// file is refused with an error naming the path. Call it once; call `stop()` even if it threw.
    package func start() throws(ControlServerError) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            let serving = try bind(group: group, pool: pool)
            let replaced = lifecycle.withLock { state in
                guard case .notStarted = state else { return false }
                state = .serving(serving)
                return true
            }
            precondition(replaced, "ControlServer.start() called twice")
        } catch {
            try? pool.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            lifecycle.withLock { $0 = .stopped }
            throw error
        }
    }

    /// Stops accepting, finishes the answers in flight (waiting at most `drainSeconds`), closes every
    /// connection and removes the socket file. Call it from neither an event loop nor a route handler.
    package func stop(drainSeconds: Int64 = 5) {
        let taken = lifecycle.withLock { state -> Serving? in
            defer { state = .stopped }
            guard case .serving(let serving) = state else { return nil }
            return serving
        }
        guard let serving = taken else { return }
        try? serving.listener.close().wait()
        SocketFile.remove(socketPath, ifStill: serving.socketIdentity)
        let open = serving.connections.beginStopping()
        // The pipelining handler closes an idle connection now, and a busy one once its answer is written.
        for channel in open { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        let loop = serving.group.next()
        let deadline = loop.scheduleTask(in: .seconds(drainSeconds)) {
            for channel in open { channel.close(promise: nil) }
        }
        try? EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: loop).wait()
        deadline.cancel()
        try? serving.pool.syncShutdownGracefully()
        try? serving.group.syncShutdownGracefully()
    }

    private func bind(group: MultiThreadedEventLoopGroup, pool: NIOThreadPool) throws(ControlServerError) -> Serving {
        guard socketPath.utf8.count <= SocketFile.maximumPathBytes, !socketPath.isEmpty else {
            throw .pathTooLong(path: socketPath, limitInBytes: SocketFile.maximumPathBytes)
        }
        try SocketFile.clear(socketPath, group: group)
        let staging = try SocketFile.makeStaging(for: socketPath)
        defer { try? FileManager.default.removeItem(atPath: staging.directory) }
        let connections = OpenConnections()
        let router = self.router, limit = Self.maximumBodyBytes
        let listener: any Channel
        do {
            listener = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    connections.track(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
                        try pipeline.addHandler(
                            HTTPRequestHandler(router: router, pool: pool, connections: connections, maximumBodyBytes: limit))
                    }
                }
                .bind(unixDomainSocketPath: staging.socket)
                .wait()
        } catch {
            throw .cannotBind(path: socketPath, reason: FailureReason.text(error))
        }
        do {
            let identity = try SocketFile.publish(staging.socket, at: socketPath)
            return Serving(group: group, pool: pool, listener: listener, connections: connections, socketIdentity: identity)
        } catch {
            try? listener.close().wait()
            throw error
        }
    }
}

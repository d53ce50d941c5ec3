import FoundationEssentials
import Glibc
import LinuxSystem
import NIOCore
import NIOHTTP1
import NIOPosix
import SystemPackage

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
    /// The largest request body accepted; a longer one gets 413. (Request heads are limited by
    /// NIO's HTTP parser, 80 KiB.)
    package static let maximumBodyBytes = 64 * 1024
    /// How many connections may be open at once (see `OpenConnections`), and how long one may
    /// stay silent without a request being answered before it is closed.
    package struct Limits: Sendable {
        package var maximumConnections = 64
        package var idleSeconds: Int64 = 30

        package init(maximumConnections: Int = 64, idleSeconds: Int64 = 30) {
            self.maximumConnections = maximumConnections
            self.idleSeconds = idleSeconds
        }
    }
    private let limits: Limits

    /// Where the socket is served.
    package let socketPath: String
    private let routes: RouteTable
    private let lifecycle = Locked<Lifecycle>(.notStarted)

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
        /// The listening socket's descriptor (NIO owns it), handed to the next VMM by a live update.
        let descriptor: CInt
    }

    /// A server that answers with `router`'s routes.
    package init(socketPath: String, router: Router, limits: Limits = Limits()) {
        self.socketPath = socketPath
        routes = RouteTable(router)
        self.limits = limits
    }

    /// Answers every request from now on with `router`'s routes (a standby VMM's become a VM's
    /// once it has restored one); a request already being answered finishes with the old ones.
    package func replaceRoutes(with router: Router) { routes.replace(with: router) }

    /// A server with every route of the control API, answered by `control`; `version` is reported by GET /version.
    package convenience init(socketPath: String, control: any VMControl, version: String, limits: Limits = Limits()) {
        self.init(socketPath: socketPath, router: Router(control: control, version: version), limits: limits)
    }

    /// Binds the socket (mode 0600) and starts serving; returns once clients can connect.
    ///
    /// A stale socket at the path (nothing accepts on it) is replaced; a live socket or any other
    /// file is refused with an error naming the path. Call it once; call `stop()` even if it threw.
    package func start() throws(ControlServerError) {
        try start { (group, pool) throws(ControlServerError) in try bind(group: group, pool: pool) }
    }

    /// Starts serving on a listening socket this process inherited from the VMM it replaced
    /// (live update): already bound at `socketPath`, so clients that connected meanwhile wait
    /// in its backlog and are answered now. Takes ownership of `descriptor`. Not `accepting`,
    /// it is ready but leaves clients in the backlog until `setAccepting(true)` (a transfer-mode
    /// update's new VMM, made ready while the old one still serves on the same socket).
    package func start(adoptingListener descriptor: CInt, accepting: Bool = true) throws(ControlServerError) {
        try start { (group, pool) throws(ControlServerError) in try adopt(descriptor, accepting: accepting, group: group, pool: pool) }
    }

    /// The listening socket's descriptor while serving; a live update keeps it open across exec.
    package var listenerDescriptor: CInt? {
        lifecycle.withLock { state in
            guard case .serving(let serving) = state else { return nil }
            return serving.descriptor
        }
    }

    /// Connections open now, on the server's side (0 when not serving): what the connection cap
    /// and the idle time bound.
    package var openConnectionCount: Int {
        let connections = lifecycle.withLock { state -> OpenConnections? in
            guard case .serving(let serving) = state else { return nil }
            return serving.connections
        }
        return connections?.count ?? 0
    }

    /// Stops or restarts accepting connections; those that arrive meanwhile wait in the backlog.
    /// A live update stops accepting just before exec, so no connection is accepted by a
    /// process about to vanish. Call it from neither an event loop nor a route handler.
    package func setAccepting(_ accepting: Bool) {
        let listener = lifecycle.withLock { state -> (any Channel)? in
            guard case .serving(let serving) = state else { return nil }
            return serving.listener
        }
        try? listener?.setOption(ChannelOptions.autoRead, value: accepting).wait()
    }

    private func start(
        _ listen: (MultiThreadedEventLoopGroup, NIOThreadPool) throws(ControlServerError) -> Serving
    ) throws(ControlServerError) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            let serving = try listen(group, pool)
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
        let descriptor: CInt
        do { descriptor = try UnixSocketPath.bind(staging.socket).release() } catch {
            throw .cannotBind(path: socketPath, reason: "\(error.errno)")
        }
        let (listener, connections) = try serve(descriptor, group: group, pool: pool)
        do {
            let identity = try SocketFile.publish(staging.socket, at: socketPath)
            return Serving(
                group: group, pool: pool, listener: listener, connections: connections, socketIdentity: identity, descriptor: descriptor)
        } catch {
            try? listener.close().wait()
            throw error
        }
    }

    private func adopt(
        _ descriptor: CInt, accepting: Bool, group: MultiThreadedEventLoopGroup, pool: NIOThreadPool
    ) throws(ControlServerError) -> Serving {
        guard fcntl(descriptor, F_SETFD, FD_CLOEXEC) == 0 else {
            close(descriptor)
            throw .cannotBind(path: socketPath, reason: "inherited socket descriptor \(descriptor): \(Errno(rawValue: errno))")
        }
        let (listener, connections) = try serve(descriptor, accepting: accepting, group: group, pool: pool)
        return Serving(
            group: group, pool: pool, listener: listener, connections: connections,
            socketIdentity: SocketFile.identity(of: socketPath), descriptor: descriptor)
    }

    /// Listens on the bound socket `descriptor` (NIO owns it from here on, and closes it on failure).
    private func serve(
        _ descriptor: CInt, accepting: Bool = true, group: MultiThreadedEventLoopGroup, pool: NIOThreadPool
    ) throws(ControlServerError) -> (any Channel, OpenConnections) {
        let connections = OpenConnections(maximum: limits.maximumConnections)
        let routes = self.routes, limit = Self.maximumBodyBytes, idle = TimeAmount.seconds(limits.idleSeconds)
        do {
            let listener = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .serverChannelOption(.autoRead, value: accepting)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    connections.track(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        // Reads wait while answers wait to be written: pipelining hands the next request
                        // over once an answer is written into the channel, not once it has left, so a
                        // client that never reads would pile its answers up in memory without end.
                        try pipeline.addHandler(BackPressureHandler())
                        try pipeline.addHandler(IdleStateHandler(readTimeout: idle))
                        try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
                        try pipeline.addHandler(
                            HTTPRequestHandler(routes: routes, pool: pool, connections: connections, maximumBodyBytes: limit))
                    }
                }
                .withBoundSocket(descriptor)
                .wait()
            return (listener, connections)
        } catch {
            throw .cannotBind(path: socketPath, reason: FailureReason.text(error))
        }
    }
}

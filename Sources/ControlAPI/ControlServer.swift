import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The control API: HTTP/1.1 with JSON bodies on a Unix socket of mode 0600.
///
/// `curl --unix-socket PATH http://localhost/vm` works. Requests are routed on a thread
/// pool, so a slow VM operation never stalls the event loop or other clients.
package final class ControlServer: Sendable {
    package let socketPath: String
    private let router: Router
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let pool = NIOThreadPool(numberOfThreads: 1)
    private let channel = Mutex<Channel?>(nil)

    package init(socketPath: String, router: Router) {
        self.socketPath = socketPath
        self.router = router
    }

    /// Serves `control` with the standard VM routes.
    package convenience init(socketPath: String, control: any VMControl, version: String) {
        self.init(socketPath: socketPath, router: VMRoutes.router(for: control, version: version))
    }

    /// Binds the socket and starts serving. A stale socket at the path is replaced; a live one or a file is refused.
    package func start() throws(ControlAPIError) {
        try clearStaleSocket()
        pool.start()
        let directory = URL(fileURLWithPath: socketPath).deletingLastPathComponent()
        // Bind inside a private directory, tighten the mode, then move into place: never reachable by others.
        let staging = directory.appendingPathComponent(".engram-api-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .bind(path: socketPath, reason: "cannot create a directory beside it (\(error.localizedDescription))")
        }
        defer { try? FileManager.default.removeItem(at: staging) }
        let stagedPath = staging.appendingPathComponent("api.sock").path
        let router = self.router, pool = self.pool
        do {
            let bound = try ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 32)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: false)
                        try channel.pipeline.syncOperations.addHandler(HTTPRequestHandler(router: router, pool: pool))
                    }
                }
                .bind(unixDomainSocketPath: stagedPath).wait()
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: stagedPath)
            try FileManager.default.moveItem(atPath: stagedPath, toPath: socketPath)
            channel.withLock { $0 = bound }
        } catch {
            throw .bind(path: socketPath, reason: "\(error)")
        }
    }

    /// Stops serving and removes the socket file.
    package func stop() {
        if let bound = channel.withLock({ value in defer { value = nil }; return value }) {
            try? bound.close().wait()
            try? FileManager.default.removeItem(atPath: socketPath)
        }
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    private func clearStaleSocket() throws(ControlAPIError) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: socketPath) else { return }
        guard attributes[.type] as? FileAttributeType == .typeSocket else { throw .notASocket(path: socketPath) }
        let live = (try? ClientBootstrap(group: group).connect(unixDomainSocketPath: socketPath).wait()).map { channel in
            try? channel.close().wait()
            return true
        } ?? false
        guard !live else { throw .socketInUse(path: socketPath) }
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}

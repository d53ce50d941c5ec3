import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Test plumbing below HTTP: send any bytes on a Unix socket, read what comes back; run throwaway servers.
enum RawConnection {
    struct Timeout: Error {}

    /// Connects, writes `bytes`, and returns everything the server sends until it closes the connection.
    /// With `halfClose`, shuts the sending side after writing, as `nc -N` does.
    static func exchange(_ path: String, _ bytes: [UInt8], halfClose: Bool = false, timeoutSeconds: Int64 = 10) throws -> String {
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: [UInt8].self)
        let channel = try ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(promise: promise))
                }
            }
            .connect(unixDomainSocketPath: path).wait()
        defer { channel.close(promise: nil) }
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
        if halfClose { try channel.close(mode: .output).wait() }
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(timeoutSeconds)) { promise.fail(Timeout()) }
        defer { timeout.cancel() }
        return String(decoding: try promise.futureResult.wait(), as: UTF8.self)
    }

    /// Connects and sends `bytes` without waiting for anything; the caller closes the channel.
    static func open(_ path: String, sending bytes: [UInt8]) throws -> any Channel {
        let channel = try ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(unixDomainSocketPath: path).wait()
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
        return channel
    }

    /// Binds a listener at `path` whose every connection gets `reply` and is then closed.
    static func serve(_ path: String, reply: [UInt8]) throws -> any Channel {
        try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Replier(reply: reply))
                }
            }
            .bind(unixDomainSocketPath: path).wait()
    }

    /// Leaves a stale socket at `path`: a socket file nothing accepts on.
    ///
    /// NIO unlinks a listener's path when it closes, so the socket is bound elsewhere, hard-linked to
    /// `path`, and then closed: the link stays.
    static func makeStaleSocket(_ path: String) throws {
        let bound = path + ".bound"
        let listener = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: bound).wait()
        try FileManager.default.linkItem(atPath: bound, toPath: path)
        try listener.close().wait()
    }

    /// Writes its reply as soon as the connection is up, then closes.
    private final class Replier: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private let reply: [UInt8]

        init(reply: [UInt8]) { self.reply = reply }

        func channelActive(context: ChannelHandlerContext) {
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(ByteBuffer(bytes: reply))).whenComplete { _ in channel.close(promise: nil) }
        }
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private let promise: EventLoopPromise<[UInt8]>
        private var received: [UInt8] = []

        init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received.append(contentsOf: Self.unwrapInboundIn(data).readableBytesView)
        }

        func channelInactive(context: ChannelHandlerContext) { promise.succeed(received) }
    }
}

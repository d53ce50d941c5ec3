import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A blocking HTTP client for a VM's control socket, for `engram ctl` and tests.
package struct ControlClient: Sendable {
    package let socketPath: String

    package init(socketPath: String) { self.socketPath = socketPath }

    /// Sends one request and waits for the reply (60 s at most).
    package func send(method: String, path: String, body: [UInt8]? = nil) throws(ControlAPIError) -> (status: Int, body: [UInt8]) {
        guard FileManager.default.fileExists(atPath: socketPath) else { throw .noVM(path: socketPath) }
        let group = MultiThreadedEventLoopGroup.singleton
        let promise = group.next().makePromise(of: (Int, [UInt8]).self)
        let channel: Channel
        do {
            channel = try ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise))
                    }
                }
                .connect(unixDomainSocketPath: socketPath).wait()
        } catch {
            promise.fail(error)
            throw .noVM(path: socketPath)
        }
        defer { _ = try? channel.close().wait() }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "localhost")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(60)) { promise.fail(ChannelError.connectTimeout(.seconds(60))) }
        defer { timeout.cancel() }
        do {
            let (status, reply) = try promise.futureResult.wait()
            return (status, reply)
        } catch {
            throw .connection(path: socketPath, reason: "\(error)")
        }
    }
}

/// Collects one HTTP response into a promise.
private final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(Int, [UInt8])>
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(Int, [UInt8])>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(var buffer): body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end: promise.succeed((status, body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

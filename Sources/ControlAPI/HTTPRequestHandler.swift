import NIOCore
import NIOHTTP1
import NIOPosix

/// One connection's HTTP/1.1 requests: collects each request, routes it off the event loop, answers in JSON.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maximumBodyBytes = 64 * 1024

    private let router: Router
    private let pool: NIOThreadPool
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var bodyTooLarge = false

    init(router: Router, pool: NIOThreadPool) {
        self.router = router
        self.pool = pool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            head = requestHead
            body = []
            bodyTooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > Self.maximumBodyBytes {
                bodyTooLarge = true
            } else {
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            if bodyTooLarge {
                send(.error(413, "request body over \(Self.maximumBodyBytes) bytes"), keepAlive: false, context: context)
                return
            }
            let router = self.router, requestBody = body
            let method = requestHead.method.rawValue, path = requestHead.uri
            let keepAlive = requestHead.isKeepAlive
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            // VMControl calls may block (pause waits for vCPUs): never on the event loop.
            pool.runIfActive(eventLoop: context.eventLoop) {
                router.respond(method: method, path: path, body: requestBody)
            }.whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let response): handler.send(response, keepAlive: keepAlive, context: context)
                case .failure: handler.send(.error(500, "the VMM is shutting down"), keepAlive: false, context: context)
                }
            }
        }
    }

    /// Bad HTTP: a JSON 400, then close; the server goes on serving others.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is HTTPParserError {
            send(.error(400, "malformed HTTP request"), keepAlive: false, context: context)
        } else {
            context.close(promise: nil)
        }
    }

    private func send(_ response: Response, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(response.body.count)")
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        let afterSending = response.afterSending
        let channel = context.channel
        done.whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
            afterSending?()
        }
    }
}

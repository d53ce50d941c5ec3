import NIOCore
import NIOHTTP1
import NIOPosix

/// One connection's requests: gathers each request, runs its route on the worker pool, writes the JSON answer.
///
/// Lives on the connection's event loop, after NIO's HTTP decoder and pipelining handler (which hands
/// over one request at a time and holds back the next until this one's answer is written). The route
/// runs on `pool` because VMControl calls may block; only the finished `Response` comes back here.
/// Nothing a client sends reaches the machine except through a route: bad bytes end this connection only.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, body: [UInt8])
        case discardingOversizeBody
        case responding
    }

    private let routes: RouteTable
    private let pool: NIOThreadPool
    private let connections: OpenConnections
    private let maximumBodyBytes: Int
    private var state = State.idle
    /// The client closed its sending side: close the connection after the answer in progress.
    private var inputClosed = false

    init(routes: RouteTable, pool: NIOThreadPool, connections: OpenConnections, maximumBodyBytes: Int) {
        self.routes = routes
        self.pool = pool
        self.connections = connections
        self.maximumBodyBytes = maximumBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Once the server stops, nothing read from now on is answered: the connection closes (the
        // answer under way, if any, still goes). The pipelining handler hands over what it holds
        // even after it has closed the connection, and a write then trips it.
        if connections.isStopping, case .idle = state {
            context.close(promise: nil)
            return
        }
        switch (Self.unwrapInboundIn(data), state) {
        case (.head(let head), _):
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            let expectsContinue = head.headers["expect"].contains { $0.lowercased() == "100-continue" }
            if declared <= maximumBodyBytes {
                state = .receiving(head, body: [])
                // curl sends `Expect: 100-continue` before a body over 1 KiB and would otherwise wait a second.
                if expectsContinue {
                    let interim = HTTPResponseHead(version: .http1_1, status: .continue)
                    context.writeAndFlush(Self.wrapOutboundOut(.head(interim)), promise: nil)
                }
            } else if expectsContinue {
                // The client waits before sending the body: refuse now, and it never sends it.
                state = .responding
                send(Response(error: .bodyTooLarge(limitInBytes: maximumBodyBytes)), keepAlive: false, context: context)
            } else {
                state = .discardingOversizeBody
            }
        case (.body(let buffer), .receiving(let head, var body)):
            state = .idle  // drop the enum's copy so appending does not copy the array
            if body.count + buffer.readableBytes > maximumBodyBytes {
                state = .discardingOversizeBody
            } else {
                body.append(contentsOf: buffer.readableBytesView)
                state = .receiving(head, body: body)
            }
        case (.body, _):
            break  // discarding, or bytes after an answer began: ignored
        case (.end, .receiving(let head, let body)):
            dispatch(head, body: body, context: context)
        case (.end, .discardingOversizeBody):
            state = .responding
            send(Response(error: .bodyTooLarge(limitInBytes: maximumBodyBytes)), keepAlive: false, context: context)
        case (.end, _):
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            // Silent for the idle time with no answer under way (between requests, or a request
            // trickling in): the connection goes. A route still running keeps it.
            if case .responding = state { return }
            context.close(promise: nil)
        } else if case ChannelEvent.inputClosed = event {
            // A client that half-closes after its request (nc -N, socat) still gets the answer.
            // A request cut short can never complete: close now.
            inputClosed = true
            if case .responding = state { return }
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Bad HTTP gets a JSON 400 unless an answer is already under way; either way this connection ends.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard error is HTTPParserError, !connections.isStopping else {
            context.close(promise: nil)
            return
        }
        switch state {
        case .responding:
            context.close(promise: nil)
        case .idle, .receiving, .discardingOversizeBody:
            state = .responding
            // Written and flushed now: the decoder closes the channel as soon as this returns.
            send(Response(error: .malformedRequest(reason: "\(error)")), keepAlive: false, context: context)
        }
    }

    /// Runs the route on the pool and answers from the event loop when it is done.
    private func dispatch(_ head: HTTPRequestHead, body: [UInt8], context: ChannelHandlerContext) {
        state = .responding
        connections.setAnswering(context.channel, true)
        let keepAlive = head.isKeepAlive && !inputClosed
        // Stopping: a request that ends now gets no answer, only the close (see channelRead).
        guard !connections.isStopping else {
            context.close(promise: nil)
            return
        }
        let routes = self.routes, method = head.method.rawValue, target = head.uri, request = RequestBody(body)
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        pool.runIfActive(eventLoop: context.eventLoop) {
            routes.current.respond(method: method, target: target, body: request)
        }.whenComplete { result in
            let (handler, context) = bound.value
            switch result {
            case .success(let response): handler.send(response, keepAlive: keepAlive, context: context)
            case .failure: handler.send(Response(error: .unavailable), keepAlive: false, context: context)
            }
        }
    }

    private func send(_ response: Response, keepAlive: Bool, context: ChannelHandlerContext) {
        let keepAlive = keepAlive && !inputClosed
        var headers = HTTPHeaders()
        if !response.body.isEmpty, response.headers["Content-Type"] == nil { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: String(response.body.count))
        for (name, value) in response.headers.sorted(by: { $0.key < $1.key }) { headers.add(name: name, value: value) }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(Self.wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        // Idle before writing the end: the pipelining handler may hand over the next request during that write.
        state = .idle
        let channel = context.channel, pool = self.pool, afterSent = response.afterSent
        let connections = self.connections
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in
            connections.setAnswering(channel, false)
            if !keepAlive { channel.close(promise: nil) }
            // On the worker thread, in line with the routes: it may block, and no route runs meanwhile.
            if let afterSent { pool.submit { _ in afterSent() } }
        }
    }
}

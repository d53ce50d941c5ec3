import NIOCore
import NIOHTTP1

/// Gathers one HTTP answer into a promise: status and body, or why there is none.
final class ResponseCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    /// Why the promise failed.
    enum Failure: Error {
        case closedEarly
        case malformed(String)
        case timedOut
    }

    private let promise: EventLoopPromise<(status: Int, body: [UInt8])>
    private let maximumBodyBytes: Int
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(status: Int, body: [UInt8])>, maximumBodyBytes: Int) {
        self.promise = promise
        self.maximumBodyBytes = maximumBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            guard body.count + buffer.readableBytes <= maximumBodyBytes else {
                promise.fail(Failure.malformed("the body is larger than \(maximumBodyBytes) bytes"))
                context.close(promise: nil)
                return
            }
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            promise.succeed((status: status, body: body))  // a second completion is ignored by NIO
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(Failure.closedEarly)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error is HTTPParserError ? Failure.malformed("\(error)") : error)
        context.close(promise: nil)
    }
}

import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Collects a reply's body straight into the bytes the client hands on, sized from its
/// Content-Length: one copy of each byte after the socket's, where AsyncHTTPClient's own
/// accumulator grows a buffer that then had to be copied out (a second copy of every chunk a
/// restore fetches, half a gigabyte for the bench guest).
final class ResponseCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    // Every variable is touched only on the request's event loop, one callback at a time.
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    /// False for HEAD, whose Content-Length is the object's and whose reply has no body.
    private let expectsBody: Bool

    init(method: HTTPMethod) { expectsBody = method != .HEAD }

    /// Bytes reserved up front at most, whatever Content-Length says: a store's word is not a reason to allocate.
    static let largestReservation = 64 << 20
    /// Bodies larger than this are refused (AsyncHTTPClient's own limit: a ByteBuffer's).
    static let largestBody = Int(UInt32.max)

    struct TooLarge: Error, CustomStringConvertible {
        var description: String { "the reply's body is larger than \(ResponseCollector.largestBody) bytes" }
    }

    func didReceiveHead(task: HTTPClient.Task<S3Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head = head
        if expectsBody, let announced = head.headers.first(name: "Content-Length").flatMap(Int.init), announced > 0 {
            body.reserveCapacity(min(announced, Self.largestReservation))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<S3Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        guard body.count + buffer.readableBytes <= Self.largestBody else { return task.eventLoop.makeFailedFuture(TooLarge()) }
        body.append(contentsOf: buffer.readableBytesView)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<S3Response>) throws -> S3Response {
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return S3Response(status: Int(head.status.code), reason: head.status.reasonPhrase, headers: head.headers, body: body)
    }
}

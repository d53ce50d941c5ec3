import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Collects a reply's body straight into the bytes the client hands on, sized from its
/// Content-Length: one copy of each byte after the socket's, where AsyncHTTPClient's own
/// accumulator grows a buffer that then had to be copied out (a second copy of every chunk a
/// restore fetches, half a gigabyte for the bench guest). A ranged GET of several chunks is
/// split into one array per chunk as it arrives, rather than cut apart afterwards.
final class ResponseCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    // Every variable is touched only on the request's event loop, one callback at a time.
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var pieces: [[UInt8]] = []
    /// False for HEAD, whose Content-Length is the object's and whose reply has no body.
    private let expectsBody: Bool
    private let pieceLengths: [Int]?
    /// Whether this reply's body goes into pieces: a 206 to a request that asked for them.
    private var splits = false
    private let keptRange: Range<UInt64>?
    /// Whether only `keptRange` of this reply's body is kept: a 200 (the whole object) to a
    /// ranged GET. An error's body is kept whole (its code decides retries).
    private var keeps = false
    /// Body bytes received so far (kept or not).
    private var received: UInt64 = 0

    init(method: HTTPMethod, pieceLengths: [Int]? = nil, keptRange: Range<UInt64>? = nil) {
        expectsBody = method != .HEAD
        self.pieceLengths = pieceLengths
        self.keptRange = keptRange
    }

    /// Bytes reserved up front at most, whatever Content-Length says: a store's word is not a reason to allocate.
    static let largestReservation = 64 << 20
    /// Bodies larger than this are refused (AsyncHTTPClient's own limit: a ByteBuffer's).
    static let largestBody = Int(UInt32.max)

    struct TooLarge: Error, CustomStringConvertible {
        var description: String { "the reply's body is larger than asked for" }
    }

    func didReceiveHead(task: HTTPClient.Task<S3Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head = head
        splits = pieceLengths != nil && head.status == .partialContent
        if splits { return task.eventLoop.makeSucceededVoidFuture() }
        keeps = keptRange != nil && head.status == .ok
        if expectsBody, let announced = head.headers.first(name: "Content-Length").flatMap(Int.init), announced > 0 {
            let wanted = keeps ? keptRange.map { Int(clamping: $0.upperBound - $0.lowerBound) } ?? announced : announced
            body.reserveCapacity(min(announced, wanted, Self.largestReservation))
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<S3Response>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        if splits, let lengths = pieceLengths {
            var rest = buffer.readableBytesView
            while !rest.isEmpty {
                if pieces.isEmpty || pieces[pieces.count - 1].count == lengths[pieces.count - 1] {
                    // More bytes than the pieces hold: the caller finds the lengths wrong and refuses the reply.
                    guard pieces.count < lengths.count else { return task.eventLoop.makeFailedFuture(TooLarge()) }
                    pieces.append([])
                    pieces[pieces.count - 1].reserveCapacity(min(lengths[pieces.count - 1], Self.largestReservation))
                }
                let take = min(rest.count, lengths[pieces.count - 1] - pieces[pieces.count - 1].count)
                pieces[pieces.count - 1].append(contentsOf: rest[rest.startIndex..<rest.startIndex + take])
                rest = rest[(rest.startIndex + take)...]
            }
            return task.eventLoop.makeSucceededVoidFuture()
        }
        let start = received
        received += UInt64(buffer.readableBytes)
        if keeps, let keptRange {
            // Only the bytes of the range asked for; the rest of a whole object goes by.
            let from = max(start, keptRange.lowerBound), to = min(received, keptRange.upperBound)
            if from < to {
                let view = buffer.readableBytesView
                body.append(contentsOf: view[view.startIndex + Int(from - start)..<view.startIndex + Int(to - start)])
            }
            return task.eventLoop.makeSucceededVoidFuture()
        }
        guard body.count + buffer.readableBytes <= Self.largestBody else { return task.eventLoop.makeFailedFuture(TooLarge()) }
        body.append(contentsOf: buffer.readableBytesView)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<S3Response>) throws -> S3Response {
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return S3Response(status: Int(head.status.code), reason: head.status.reasonPhrase, headers: head.headers, body: body, pieces: pieces,
                          bodyBytesSent: splits ? 0 : (keeps ? received : UInt64(body.count)))
    }
}

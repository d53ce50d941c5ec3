import LinuxSystem
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Signing, sending and retrying: the part of the client every operation shares.
extension S3Client {
    /// What an operation makes of a reply that was not transient.
    enum Verdict<Value> {
        case done(Value)
        /// Transient after all (an error inside a 200 reply): retry, for this reason.
        case retry(String)
    }

    /// Sends `request` until a reply that is not transient comes back, and hands it to
    /// `interpret` with the attempt's number; retries transient failures with exponential
    /// backoff until the retry policy gives up (or `giveUpAfterMilliseconds`, when shorter).
    func perform<Value>(_ request: S3Request, giveUpAfterMilliseconds: Int? = nil,
                        interpret: (S3Response, _ attempt: Int) throws(ObjectStoreError) -> Verdict<Value>) throws(ObjectStoreError) -> Value {
        let giveUp = min(retry.giveUpAfterMilliseconds, giveUpAfterMilliseconds ?? .max)
        guard let endpoint else {
            throw .credentials("endpoint \(configuration.endpoint.debugDescription) is not http://HOST[:PORT] or https://HOST[:PORT]")
        }
        if isShutDown.withLock({ $0 }) {
            throw .unavailable(endpoint: endpoint.text, reason: "the client was shut down", attempts: 0)
        }
        let payloadHash = SigV4Signer.hexSHA256(request.body)
        let clock = ContinuousClock()
        let start = clock.now
        var delay = retry.firstDelayMilliseconds
        var attempt = 0
        while true {
            attempt += 1
            let reason: String
            // Each attempt has a deadline (what is left of the budget, or the attempt timeout if
            // longer): the read timeout alone would let a store that trickles a byte at a time
            // hold a faulting guest for as long as it likes.
            let remaining = giveUp - Int(start.duration(to: clock.now).inMilliseconds)
            switch execute(request, endpoint: endpoint, payloadHash: payloadHash,
                           withinMilliseconds: max(remaining, retry.attemptTimeoutMilliseconds)) {
            case .success(let response):
                if let transient = Self.transientReason(response) {
                    reason = transient
                } else {
                    switch try interpret(response, attempt) {
                    case .done(let value): return value
                    case .retry(let why): reason = why
                    }
                }
            case .failure(let failure):
                guard !failure.isPermanent else {
                    throw .unavailable(endpoint: endpoint.text, reason: "\(subject(request)): \(failure.reason)", attempts: attempt)
                }
                reason = failure.reason
            }
            let elapsed = start.duration(to: clock.now)
            let elapsedMilliseconds = Int(elapsed.inMilliseconds)
            // Full jitter over the upper half: fault threads hit by one outage spread their retries.
            let wait = Int.random(in: (delay + 1) / 2...delay)
            guard elapsedMilliseconds + wait <= giveUp, !isShutDown.withLock({ $0 }) else {
                throw .unavailable(endpoint: endpoint.text, reason: "\(subject(request)): \(reason)", attempts: attempt)
            }
            Thread.sleep(forTimeInterval: Double(wait) / 1000)
            counters.withLock { $0.retries += 1 }
            delay = min(delay * 2, retry.maximumDelayMilliseconds)
        }
    }

    /// "GET s3://bucket/key", for messages.
    private func subject(_ request: S3Request) -> String {
        if let location = request.location { return "\(request.operation) \(location)" }
        return request.bucket.isEmpty ? request.operation : "\(request.operation) s3://\(request.bucket)"
    }

    /// One attempt: sign, send, wait for the whole reply.
    private func execute(
        _ request: S3Request, endpoint: EndpointParts, payloadHash: String, withinMilliseconds budget: Int
    ) -> Result<S3Response, TransportFailure> {
        let path = request.encodedPath
        let signed = signer.sign(method: request.method.rawValue, encodedPath: path, query: request.query,
                                 headers: [(name: "host", value: endpoint.hostHeader)] + request.headers,
                                 payloadHash: payloadHash, date: Date())
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: endpoint.hostHeader)
        for header in request.headers { headers.add(name: header.name, value: header.value) }
        for header in signed.headers { headers.add(name: header.name, value: header.value) }
        let query = request.encodedQuery
        let url = endpoint.text + path + (query.isEmpty ? "" : "?" + query)
        counters.withLock {
            $0.requests += 1
            $0.bytesSent += UInt64(request.body.count)
        }
        do {
            let outgoing = try HTTPClient.Request(url: url, method: request.method, headers: headers,
                                                  body: request.body.isEmpty ? nil : .bytes(request.body))
            let collector = ResponseCollector(method: request.method, pieceLengths: request.pieceLengths, keptRange: request.keptRange)
            let reply = try http.execute(request: outgoing, delegate: collector, deadline: .now() + .milliseconds(Int64(budget))).wait()
            counters.withLock { $0.bytesReceived += UInt64(reply.body.count + reply.pieces.reduce(0) { $0 + $1.count }) }
            return .success(reply)
        } catch {
            return .failure(TransportFailure(error, retry: retry))
        }
    }

    /// Why a reply is worth retrying, or nil when it is final. 500, 502, 503 and 504 are the
    /// store failing for now; 429 and S3's throttling and timeout codes ask the client to come
    /// back later, whatever their status.
    static func transientReason(_ response: S3Response) -> String? {
        let retriedCodes: Set<String> = ["SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling", "ThrottlingException"]
        let status = response.status
        guard [429, 500, 502, 503, 504].contains(status) || (status >= 400 && !response.body.isEmpty) else { return nil }
        let (code, message) = S3Replies.error(response.body, fallback: response.reason)
        guard [429, 500, 502, 503, 504].contains(status) || retriedCodes.contains(code) else { return nil }
        return "HTTP \(status)\(code.isEmpty ? "" : " " + code): \(message)"
    }

    /// The error for a final reply that is not what the operation wanted.
    func refusal(_ response: S3Response, _ location: ObjectLocation?) -> ObjectStoreError {
        let (code, message) = S3Replies.error(response.body, fallback: response.reason)
        return .refused(location, status: response.status, code: code, message: message)
    }
}

/// A failed attempt that got no HTTP reply, and whether trying again could help.
struct TransportFailure: Error {
    let reason: String
    /// Failures of the request itself (a bad URL, a client already shut down): no retry helps.
    let isPermanent: Bool

    init(_ error: any Error, retry: RetryPolicy) {
        guard let client = error as? HTTPClientError else {
            // Connection refused or reset, DNS, TLS: the network's or the store's state, which may pass.
            isPermanent = false
            reason = Self.shortened(String(describing: error))
            return
        }
        let permanent: [HTTPClientError] = [
            .invalidURL, .emptyHost, .emptyScheme, .missingSocketPath, .alreadyShutdown, .cancelled,
            .traceRequestWithBody, .bodyLengthMismatch, .shutdownUnsupported,
        ]
        isPermanent = permanent.contains(client)
        switch client {
        case .connectTimeout: reason = "no connection within \(retry.connectTimeoutMilliseconds) ms"
        case .readTimeout: reason = "no reply within \(retry.attemptTimeoutMilliseconds) ms"
        case .remoteConnectionClosed: reason = "the store closed the connection"
        case .alreadyShutdown: reason = "the client was shut down"
        default: reason = Self.shortened(String(describing: client))
        }
    }

    private static func shortened(_ text: String) -> String {
        text.count <= 300 ? text : String(text.prefix(300)) + "…"
    }
}

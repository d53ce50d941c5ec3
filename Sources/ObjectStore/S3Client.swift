import AsyncHTTPClient
import Foundation
import LinuxSystem
import NIOCore

/// A blocking S3 client: each call runs on the caller's thread (the lazy pager's fault and fill
/// threads call it) and waits for AsyncHTTPClient's future; connections are pooled and kept alive.
/// Transient failures (connection refused/reset/timeouts, HTTP 500, 502, 503, 504, SlowDown) are
/// retried with exponential backoff until the policy gives up; 4xx other than those are not.
///
/// Blocking, because its callers are plain threads (a userfaultfd handler cannot await), and one
/// HTTP client per S3Client so that its pool of kept-alive connections serves every thread.
/// Never call it on a SwiftNIO event loop thread: it would wait on itself.
package final class S3Client: Sendable {
    let configuration: S3Configuration
    let retry: RetryPolicy
    let signer: SigV4Signer
    /// nil when the configuration's endpoint does not parse; every call then fails saying so.
    let endpoint: EndpointParts?
    let http: HTTPClient
    let counters = Locked(ObjectStoreStatistics())
    let isShutDown = Locked(false)

    package init(configuration: S3Configuration, retry: RetryPolicy = .default) {
        self.configuration = configuration
        self.retry = retry
        self.signer = SigV4Signer(accessKeyID: configuration.accessKeyID, secretAccessKey: configuration.secretAccessKey,
                                  sessionToken: configuration.sessionToken, region: configuration.region)
        var endpointText = configuration.endpoint
        while endpointText.hasSuffix("/") { endpointText.removeLast() }
        self.endpoint = EndpointParts(endpointText)
        var settings = HTTPClient.Configuration(
            redirectConfiguration: .disallow,  // a redirect would resend the signature to another host
            timeout: .init(connect: .milliseconds(Int64(retry.connectTimeoutMilliseconds)),
                           read: .milliseconds(Int64(retry.attemptTimeoutMilliseconds))),
            connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 16),
            decompression: .disabled)
        settings.httpVersion = .automatic
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
    }

    deinit {
        // AsyncHTTPClient traps in debug builds on a client dropped while still running; this
        // shutdown does not block, so it is safe on whatever thread drops the last reference.
        if isShutDown.withLock({ done in defer { done = true }; return !done }) {
            http.shutdown { _ in }
        }
    }

    /// Closes the HTTP client and its connections (also safe to call twice). Calls after it fail
    /// as unavailable.
    package func shutdown() {
        guard isShutDown.withLock({ done in defer { done = true }; return !done }) else { return }
        let finished = DispatchSemaphore(value: 0)
        http.shutdown { _ in finished.signal() }
        finished.wait()
    }

    /// Counters for statistics: requests, bytes received/sent, retries.
    package var statistics: ObjectStoreStatistics { counters.withLock { $0 } }

    /// The endpoint as errors name it.
    var endpointName: String { endpoint?.text ?? configuration.endpoint }
}

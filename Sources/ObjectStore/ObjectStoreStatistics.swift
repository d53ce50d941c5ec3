/// What a client has done so far, for `engram`'s statistics: every attempt counts as a request,
/// and bytes are HTTP bodies (headers are not counted).
package struct ObjectStoreStatistics: Sendable, Equatable {
    package var requests: UInt64
    package var bytesReceived: UInt64
    package var bytesSent: UInt64
    /// Attempts repeated after a transient failure.
    package var retries: UInt64

    package init(requests: UInt64 = 0, bytesReceived: UInt64 = 0, bytesSent: UInt64 = 0, retries: UInt64 = 0) {
        self.requests = requests
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.retries = retries
    }
}

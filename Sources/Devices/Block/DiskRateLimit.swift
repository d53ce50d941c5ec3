/// A disk's I/O limit, as Firecracker's drive `rate_limiter`: a bandwidth bucket (bytes moved by
/// reads and writes) and an operations bucket (every request), each optional. A request waits
/// on the ring until both buckets can pay for it, so the guest's driver sees a slower disk,
/// never an error.
package struct DiskRateLimit: Sendable, Equatable, Codable {
    /// Bytes per second read or written.
    package var bandwidth: RateLimit?
    /// Requests per second (of every type).
    package var operations: RateLimit?

    package init(bandwidth: RateLimit? = nil, operations: RateLimit? = nil) {
        self.bandwidth = bandwidth
        self.operations = operations
    }

    /// True when it limits nothing.
    package var isEmpty: Bool { bandwidth == nil && operations == nil }

    /// Every bucket it has has a rate and a burst of at least 1 (a saved file may say otherwise).
    package var isValid: Bool { (bandwidth?.isValid ?? true) && (operations?.isValid ?? true) }
}

/// A disk's two token buckets in use, on the device I/O thread.
struct DiskLimiter {
    private var bandwidth: TokenBucket?
    private var operations: TokenBucket?

    init(_ limit: DiskRateLimit?, now: UInt64) {
        bandwidth = limit?.bandwidth.map { $0.bucket(now: now) }
        operations = limit?.operations.map { $0.bucket(now: now) }
    }

    /// Pays for a request moving `bytes` at time `now`, or returns when it can be paid (and pays nothing).
    mutating func admit(bytes: UInt64, now: UInt64) -> UInt64? {
        let operationReady = operations?.readyTime(for: 1, now: now) ?? now
        let bandwidthReady = bytes == 0 ? now : bandwidth?.readyTime(for: bytes, now: now) ?? now
        let ready = max(operationReady, bandwidthReady)
        guard ready <= now else { return ready }
        _ = operations?.consume(1, now: now)
        if bytes > 0 { _ = bandwidth?.consume(bytes, now: now) }
        return nil
    }
}

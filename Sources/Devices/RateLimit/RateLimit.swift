/// One token bucket as a user sets it: `rate` tokens per second, at most `burst` at once after a
/// quiet spell (Firecracker's `size`/`refill_time` pair, said as a rate).
package struct RateLimit: Sendable, Equatable, Codable {
    package var rate: UInt64
    package var burst: UInt64

    /// Both at least 1; a burst of one second's worth unless given.
    package init(rate: UInt64, burst: UInt64? = nil) {
        self.rate = rate
        self.burst = burst ?? rate
    }

    /// A full bucket at monotonic time `now` (ns).
    package func bucket(now: UInt64) -> TokenBucket { TokenBucket(rate: rate, burst: burst, now: now) }

    package var isValid: Bool { rate > 0 && burst > 0 }
}

/// A byte budget that refills at a steady rate up to a burst: how a device limits what a guest
/// may take, whatever the guest asks.
package struct TokenBucket: Sendable, Equatable {
    /// Bytes per second added.
    package let rate: UInt64
    /// The most bytes the bucket holds.
    package let burst: UInt64
    private var tokens: UInt64
    private var lastRefill: UInt64

    /// A full bucket at monotonic time `now` (ns).
    package init(rate: UInt64, burst: UInt64, now: UInt64) {
        precondition(rate > 0 && burst > 0)
        self.rate = rate
        self.burst = burst
        tokens = burst
        lastRefill = now
    }

    /// The bytes that may be taken at time `now`.
    package mutating func available(now: UInt64) -> UInt64 {
        refill(now: now)
        return tokens
    }

    /// Takes up to `wanted` bytes at time `now`; returns how many were granted.
    package mutating func take(_ wanted: UInt64, now: UInt64) -> UInt64 {
        refill(now: now)
        let granted = min(wanted, tokens)
        tokens -= granted
        return granted
    }

    /// When at least one byte will be available again (now if one is).
    package func nextAvailable(now: UInt64) -> UInt64 {
        guard tokens == 0 else { return now }
        return lastRefill + (1_000_000_000 + rate - 1) / rate
    }

    private mutating func refill(now: UInt64) {
        guard now > lastRefill else { return }
        let added = (now - lastRefill).multipliedReportingOverflow(by: rate)
        let whole = added.overflow ? burst : added.partialValue / 1_000_000_000
        guard whole > 0 else { return }
        tokens = min(burst, tokens + min(whole, burst))
        // Keep the fraction of a byte not yet earned.
        lastRefill = added.overflow || tokens == burst ? now : lastRefill + whole * 1_000_000_000 / rate
    }
}

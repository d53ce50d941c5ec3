/// A budget (bytes, or requests) that refills at a steady rate up to a burst: how a device limits
/// what a guest may take, whatever the guest asks.
package struct TokenBucket: Sendable, Equatable {
    /// Tokens per second added.
    package let rate: UInt64
    /// The most tokens the bucket holds.
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

    /// Takes exactly `cost` tokens at time `now` if they are there; false leaves the bucket as it
    /// was. A cost larger than the burst is granted once the bucket is full (it empties it), so
    /// no request is refused for ever.
    package mutating func consume(_ cost: UInt64, now: UInt64) -> Bool {
        refill(now: now)
        if tokens >= cost {
            tokens -= cost
            return true
        }
        guard cost > burst, tokens == burst else { return false }
        tokens = 0
        return true
    }

    /// When `consume(cost)` can succeed: the monotonic time (ns) at which the bucket holds
    /// `cost` tokens (or is full, for a cost past the burst); `now` if it already does.
    package mutating func readyTime(for cost: UInt64, now: UInt64) -> UInt64 {
        refill(now: now)
        let needed = min(cost, burst)
        guard tokens < needed else { return now }
        // ceil(missing × 1e9 / rate) ns after the last refill, saturating (rates and bursts come from users).
        let missing = needed - tokens
        let (scaled, overflow) = missing.multipliedReportingOverflow(by: 1_000_000_000)
        // Past 2^64 ns the wait is counted in whole seconds, rounded up (missing % rate != 0 implies rate ≥ 2).
        let seconds = missing / rate + (missing % rate == 0 ? 0 : 1)
        let wait = overflow ? seconds.multipliedReportingOverflow(by: 1_000_000_000) : (scaled / rate + (scaled % rate == 0 ? 0 : 1), false)
        let (ready, late) = lastRefill.addingReportingOverflow(wait.0)
        return wait.1 || late ? .max : ready
    }

    private mutating func refill(now: UInt64) {
        guard now > lastRefill else { return }
        let added = (now - lastRefill).multipliedReportingOverflow(by: rate)
        let whole = added.overflow ? burst : added.partialValue / 1_000_000_000
        guard whole > 0 else { return }
        let (sum, overflow) = tokens.addingReportingOverflow(min(whole, burst))
        tokens = overflow ? burst : min(burst, sum)
        // Keep the fraction of a byte not yet earned.
        lastRefill = added.overflow || tokens == burst ? now : lastRefill + whole * 1_000_000_000 / rate
    }
}

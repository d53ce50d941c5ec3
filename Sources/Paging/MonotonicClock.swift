import Glibc

/// CLOCK_MONOTONIC in nanoseconds: a vDSO call, no allocation, for timing faults and the fill.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var now = timespec()
        // SAFETY: `now` is a local the call fills.
        unsafe clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

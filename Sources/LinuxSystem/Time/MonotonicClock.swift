import Glibc

/// CLOCK_MONOTONIC: a vDSO call, no allocation, for timing faults, downtime and deadlines. It
/// keeps counting across exec, so a live update measures its downtime on it.
package enum MonotonicClock {
    /// Nanoseconds since an arbitrary start (boot).
    package static func nanoseconds() -> UInt64 {
        var now = Glibc.timespec()
        // SAFETY: `now` is a local the call fills.
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Milliseconds since an arbitrary start, as a fraction.
    package static func milliseconds() -> Double { Double(nanoseconds()) / 1e6 }

    /// The monotonic time `milliseconds` from now, as a timespec (for pthread_cond_timedwait).
    static func timespec(after milliseconds: Int) -> Glibc.timespec {
        let target = nanoseconds() + UInt64(max(0, milliseconds)) * 1_000_000
        return Glibc.timespec(tv_sec: Int(target / 1_000_000_000), tv_nsec: Int(target % 1_000_000_000))
    }
}

/// CLOCK_REALTIME, for the creation times written into files.
package enum WallClock {
    /// Nanoseconds since the Unix epoch (negative before 1970).
    package static func nanosecondsSinceEpoch() -> Int64 {
        var now = Glibc.timespec()
        // SAFETY: `now` is a local the call fills.
        _ = unsafe clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}

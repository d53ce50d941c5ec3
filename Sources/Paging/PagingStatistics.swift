/// What lazy restore has done so far: a consistent copy of the pager's counters, for the
/// control API, the CLI's summary and benchmarks.
///
/// Pages add up: `demandPages + backgroundPages + prefetchPages + untouchedPages == totalPages` once `complete`, and once
/// `complete`, `presentPages == totalPages`.
package struct PagingStatistics: Sendable, Codable, Equatable {
    /// Pages in every region together.
    package var totalPages: UInt64
    /// Pages installed (or found present) so far.
    package var presentPages: UInt64
    /// Fault messages the handler served by installing the faulting page.
    package var demandFaults: UInt64
    /// Of `demandFaults`, those served with UFFDIO_ZEROPAGE.
    package var demandZeroFaults: UInt64
    /// Pages the handler installed: the faulting pages and the neighbours served with them.
    package var demandPages: UInt64
    /// Pages the background fill installed (the working-set prefetch not included).
    package var backgroundPages: UInt64
    /// Pages the working-set prefetch installed at resume.
    package var prefetchPages: UInt64
    /// Pages the pager never installed: zero pages left to the fresh backing, which reads them as
    /// zero once the pager lets go (filling them would allocate memory for nothing), and pages
    /// already in memory when it started.
    package var untouchedPages: UInt64
    /// Fault messages whose page was already present (the other thread won the race): only woken.
    package var alreadyPresentFaults: UInt64
    /// Fault messages whose page the fill was already fetching (a prefetch or fill batch in
    /// flight): left to the fill's copy to wake, never fetched twice.
    package var fillWaitFaults: UInt64
    /// Pages in the working set recorded by this restore, or prefetched by it.
    package var workingSetPages: UInt64
    /// Every page is present, the ranges are unregistered and the userfaultfd is closed.
    package var complete: Bool
    /// Why the pager stopped serving, if a page could not be served.
    package var failure: String?
    /// From `start` to completion, once complete.
    package var fillDurationMilliseconds: Double?
    /// Time from reading a fault message to the ioctl that served it returning.
    package var faultLatency: FaultLatencySummary

    package init(
        totalPages: UInt64, presentPages: UInt64, demandFaults: UInt64, demandZeroFaults: UInt64, demandPages: UInt64,
        backgroundPages: UInt64, prefetchPages: UInt64 = 0, untouchedPages: UInt64, alreadyPresentFaults: UInt64,
        fillWaitFaults: UInt64 = 0, workingSetPages: UInt64 = 0, complete: Bool,
        failure: String?, fillDurationMilliseconds: Double?, faultLatency: FaultLatencySummary
    ) {
        self.totalPages = totalPages
        self.presentPages = presentPages
        self.demandFaults = demandFaults
        self.demandZeroFaults = demandZeroFaults
        self.demandPages = demandPages
        self.backgroundPages = backgroundPages
        self.prefetchPages = prefetchPages
        self.fillWaitFaults = fillWaitFaults
        self.workingSetPages = workingSetPages
        self.untouchedPages = untouchedPages
        self.alreadyPresentFaults = alreadyPresentFaults
        self.complete = complete
        self.failure = failure
        self.fillDurationMilliseconds = fillDurationMilliseconds
        self.faultLatency = faultLatency
    }
}

/// A latency distribution in microseconds, at the histogram's precision (two significant digits).
package struct FaultLatencySummary: Sendable, Codable, Equatable {
    /// Faults measured: every fault message handled (`demandFaults + alreadyPresentFaults`).
    package var count: UInt64
    package var p50Microseconds: Double
    package var p90Microseconds: Double
    package var p99Microseconds: Double
    package var maxMicroseconds: Double
    package var meanMicroseconds: Double
    /// Power-of-two buckets from 1 µs up to the one holding the maximum; each counts the faults
    /// above the previous bound and at most its own.
    package var buckets: [LatencyBucket]

    package init(
        count: UInt64, p50Microseconds: Double, p90Microseconds: Double, p99Microseconds: Double,
        maxMicroseconds: Double, meanMicroseconds: Double, buckets: [LatencyBucket]
    ) {
        self.count = count
        self.p50Microseconds = p50Microseconds
        self.p90Microseconds = p90Microseconds
        self.p99Microseconds = p99Microseconds
        self.maxMicroseconds = maxMicroseconds
        self.meanMicroseconds = meanMicroseconds
        self.buckets = buckets
    }

    /// No faults measured.
    package static let empty = FaultLatencySummary(
        count: 0, p50Microseconds: 0, p90Microseconds: 0, p99Microseconds: 0, maxMicroseconds: 0, meanMicroseconds: 0, buckets: [])
}

/// One histogram bucket: faults that took at most `upperBoundMicroseconds` (and more than the bucket before).
package struct LatencyBucket: Sendable, Codable, Equatable {
    package var upperBoundMicroseconds: Double
    package var count: UInt64

    package init(upperBoundMicroseconds: Double, count: UInt64) {
        self.upperBoundMicroseconds = upperBoundMicroseconds
        self.count = count
    }
}

/// GET /vm/memory/stats: how the guest's memory was restored and, for a lazy restore, how the
/// fill is going. Both parts are left out when they do not apply (a booted VM has neither).
package struct MemoryStatistics: Codable, Sendable, Equatable {
    package var restore: RestoreInfo?
    package var lazy: LazyFillInfo?

    package init(restore: RestoreInfo? = nil, lazy: LazyFillInfo? = nil) {
        self.restore = restore
        self.lazy = lazy
    }
}

/// Where a restored VM came from and how long the VMM took to make it runnable.
package struct RestoreInfo: Codable, Sendable, Equatable {
    /// The snapshot file restored (the top of its chain).
    package var snapshot: String
    /// "copy", "map" or "lazy".
    package var mode: String
    /// Files in the snapshot's chain (1 for a full snapshot).
    package var chainLength: Int
    /// From the start of `engram restore` until the vCPUs were started.
    package var restoreMilliseconds: Double

    package init(snapshot: String, mode: String, chainLength: Int, restoreMilliseconds: Double) {
        self.snapshot = snapshot
        self.mode = mode
        self.chainLength = chainLength
        self.restoreMilliseconds = restoreMilliseconds
    }
}

/// A lazy restore's progress: demand faults served, pages filled in the background, fault latency.
package struct LazyFillInfo: Codable, Sendable, Equatable {
    package var totalPages: UInt64
    package var presentPages: UInt64
    /// Guest (or VMM) touches of missing pages, served by the fault handler.
    package var demandFaults: UInt64
    /// Of those, pages that were zero and installed without reading (UFFDIO_ZEROPAGE).
    package var demandZeroFaults: UInt64
    /// Pages the fault handler installed: faulting pages and the neighbours served with them.
    package var demandPages: UInt64
    /// Pages installed by the background pass.
    package var backgroundPages: UInt64
    /// Pages never installed: zero pages left to the fresh backing (they read as zero), or already present.
    package var untouchedPages: UInt64
    /// Faults on pages another path installed first (a race the kernel resolves).
    package var alreadyPresentFaults: UInt64
    /// True once every page is present: no more faults can happen.
    package var complete: Bool
    /// Why the fill stopped, if it failed (the guest is then stopped).
    package var failure: String?
    /// How long the whole fill took, once complete.
    package var fillMilliseconds: Double?
    /// Time to serve a demand fault, from reading the fault to the page being installed.
    package var faultLatency: LatencyInfo
    /// Pages the working-set prefetch installed at resume.
    package var prefetchPages: UInt64 = 0
    /// Faults on pages the fill or prefetch was already fetching: left to it, never fetched twice.
    package var fillWaitFaults: UInt64 = 0
    /// Pages in the working set this restore prefetched or recorded.
    package var workingSetPages: UInt64 = 0
    /// For a restore from a page server: what crossed the network.
    package var transfer: TransferInfo?

    package init(
        totalPages: UInt64, presentPages: UInt64, demandFaults: UInt64, demandZeroFaults: UInt64, demandPages: UInt64,
        backgroundPages: UInt64, untouchedPages: UInt64, alreadyPresentFaults: UInt64, complete: Bool, failure: String?, fillMilliseconds: Double?, faultLatency: LatencyInfo
    ) {
        self.totalPages = totalPages
        self.presentPages = presentPages
        self.demandFaults = demandFaults
        self.demandZeroFaults = demandZeroFaults
        self.demandPages = demandPages
        self.backgroundPages = backgroundPages
        self.untouchedPages = untouchedPages
        self.alreadyPresentFaults = alreadyPresentFaults
        self.complete = complete
        self.failure = failure
        self.fillMilliseconds = fillMilliseconds
        self.faultLatency = faultLatency
    }
}

/// A latency distribution in microseconds: percentiles and a histogram.
package struct LatencyInfo: Codable, Sendable, Equatable {
    package var count: UInt64
    package var p50Us: Double
    package var p90Us: Double
    package var p99Us: Double
    package var maxUs: Double
    package var meanUs: Double
    /// Counts per bucket; a bucket holds the samples at or below `upToUs` and above the previous bound.
    package var buckets: [LatencyBucketInfo]

    package init(count: UInt64, p50Us: Double, p90Us: Double, p99Us: Double, maxUs: Double, meanUs: Double, buckets: [LatencyBucketInfo]) {
        self.count = count
        self.p50Us = p50Us
        self.p90Us = p90Us
        self.p99Us = p99Us
        self.maxUs = maxUs
        self.meanUs = meanUs
        self.buckets = buckets
    }
}

/// One histogram bucket.
package struct LatencyBucketInfo: Codable, Sendable, Equatable {
    package var upToUs: Double
    package var count: UInt64

    package init(upToUs: Double, count: UInt64) {
        self.upToUs = upToUs
        self.count = count
    }
}

/// What a restore from a page server moved over the network.
package struct TransferInfo: Codable, Sendable, Equatable {
    package var bytesReceived: UInt64
    package var bytesSent: UInt64
    package var requests: UInt64
    package var pagesReceived: UInt64
    /// Times the connection to the server was lost and made again.
    package var reconnects: UInt64

    package init(bytesReceived: UInt64, bytesSent: UInt64, requests: UInt64, pagesReceived: UInt64, reconnects: UInt64) {
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.requests = requests
        self.pagesReceived = pagesReceived
        self.reconnects = reconnects
    }
}

/// The balloon as GET /vm/balloon reports it (Firecracker's field names where it has them).
package struct BalloonInfo: Codable, Sendable, Equatable {
    /// The target: what the guest is asked to give up.
    package var amountMib: UInt32
    package var deflateOnOom: Bool
    /// 0 when statistics are off.
    package var statsPollingIntervalS: UInt32
    package var freePageReporting: Bool
    package var targetPages: UInt32
    package var targetMib: UInt32
    /// What the guest's driver says the balloon holds.
    package var actualPages: UInt32
    package var actualMib: UInt32
    package var inflatedPages: UInt64
    package var deflatedPages: UInt64
    /// Free-page reports received and the bytes they named.
    package var reports: UInt64
    package var reportedBytes: UInt64
    /// Bytes given back to the host (inflated and reported).
    package var discardedBytes: UInt64
    /// Page numbers the guest sent that are not its RAM (ignored).
    package var invalidPages: UInt64

    package init(
        amountMib: UInt32, deflateOnOom: Bool, statsPollingIntervalS: UInt32, freePageReporting: Bool, actualPages: UInt32,
        inflatedPages: UInt64, deflatedPages: UInt64, reports: UInt64, reportedBytes: UInt64, discardedBytes: UInt64, invalidPages: UInt64
    ) {
        self.amountMib = amountMib
        self.deflateOnOom = deflateOnOom
        self.statsPollingIntervalS = statsPollingIntervalS
        self.freePageReporting = freePageReporting
        targetPages = amountMib &* 256
        targetMib = amountMib
        self.actualPages = actualPages
        actualMib = actualPages / 256
        self.inflatedPages = inflatedPages
        self.deflatedPages = deflatedPages
        self.reports = reports
        self.reportedBytes = reportedBytes
        self.discardedBytes = discardedBytes
        self.invalidPages = invalidPages
    }
}

/// PUT /vm/balloon: the new target.
package struct BalloonUpdate: Codable, Sendable, Equatable {
    package var amountMib: UInt32
    package init(amountMib: UInt32) { self.amountMib = amountMib }
}

/// PATCH /vm/balloon/statistics: the new polling interval.
package struct BalloonStatisticsUpdate: Codable, Sendable, Equatable {
    package var statsPollingIntervalS: UInt32
    package init(statsPollingIntervalS: UInt32) { self.statsPollingIntervalS = statsPollingIntervalS }
}

/// GET /vm/balloon/statistics: the guest's last report (Firecracker's names; bytes for memory,
/// absent for what the guest did not send) and the balloon's size.
package struct BalloonStatisticsInfo: Codable, Sendable, Equatable {
    package var targetPages: UInt32
    package var actualPages: UInt32
    package var targetMib: UInt32
    package var actualMib: UInt32
    package var swapIn: UInt64?
    package var swapOut: UInt64?
    package var majorFaults: UInt64?
    package var minorFaults: UInt64?
    package var freeMemory: UInt64?
    package var totalMemory: UInt64?
    package var availableMemory: UInt64?
    package var diskCaches: UInt64?
    package var hugetlbAllocations: UInt64?
    package var hugetlbFailures: UInt64?
    /// Reports received so far.
    package var updates: UInt64

    package init(targetPages: UInt32, actualPages: UInt32, updates: UInt64) {
        self.targetPages = targetPages
        self.actualPages = actualPages
        targetMib = targetPages / 256
        actualMib = actualPages / 256
        self.updates = updates
    }
}

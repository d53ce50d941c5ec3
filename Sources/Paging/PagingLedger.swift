/// What both paging threads record under one lock: which pages are present, who installed
/// them, and how the restore ended. Held for a few bit operations at a time.
struct PagingLedger {
    var present: PresentPages
    var demandFaults: UInt64 = 0
    var demandZeroFaults: UInt64 = 0
    var demandPages: UInt64 = 0
    var backgroundPages: UInt64 = 0
    var untouchedPages: UInt64 = 0
    var alreadyPresentFaults: UInt64 = 0
    var complete = false
    var failure: String?
    var fillNanoseconds: UInt64?

    init(totalPages: UInt64) { present = PresentPages(count: totalPages) }

    /// Records pages an ioctl of `installer` just put in memory.
    mutating func recordInstalled(_ pages: Range<UInt64>, by installer: PageInstaller) {
        let added = present.insert(pages)
        switch installer {
        case .faultHandler: demandPages += added
        case .backgroundFill: backgroundPages += added
        }
    }

    /// The counters as the public statistics type.
    func statistics(faultLatency: FaultLatencySummary) -> PagingStatistics {
        PagingStatistics(
            totalPages: present.count, presentPages: present.setCount, demandFaults: demandFaults,
            demandZeroFaults: demandZeroFaults, demandPages: demandPages, backgroundPages: backgroundPages,
            untouchedPages: untouchedPages, alreadyPresentFaults: alreadyPresentFaults, complete: complete,
            failure: failure, fillDurationMilliseconds: fillNanoseconds.map { Double($0) / 1_000_000 },
            faultLatency: faultLatency)
    }
}

/// Which paging thread installed a page.
enum PageInstaller {
    case faultHandler
    case backgroundFill
}

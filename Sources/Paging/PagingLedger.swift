import LinuxSystem

/// What the paging threads record under one lock: which pages are claimed (a thread has set
/// out to install them) and present, who installed them, the working set being recorded, and
/// how the restore ended. Held for a few bit operations at a time.
///
/// A page is claimed by exactly one thread before it is fetched, so no page is fetched twice;
/// a fault on a page another thread has claimed waits for that thread's UFFDIO_COPY to wake it.
struct PagingLedger {
    var present: PresentPages
    var claimed: PresentPages
    /// Pages the guest gave back (balloon) while the restore ran: never fetched again; a fault
    /// on one is served with zeros.
    var discarded: PresentPages
    var demandFaults: UInt64 = 0
    var demandZeroFaults: UInt64 = 0
    var demandPages: UInt64 = 0
    var backgroundPages: UInt64 = 0
    var prefetchPages: UInt64 = 0
    var untouchedPages: UInt64 = 0
    var alreadyPresentFaults: UInt64 = 0
    var fillWaitFaults: UInt64 = 0
    var recording: WorkingSetRecording?
    /// The last data page the fault handler fetched, until the fill has read it: the fill fetches
    /// what follows it next (most-needed first), so a guest reading memory in order meets pages
    /// that are already in.
    var readaheadHint: PagerPage?
    var workingSetPages: UInt64 = 0
    var complete = false
    var failure: String?
    var fillNanoseconds: UInt64?

    init(totalPages: UInt64) {
        present = PresentPages(count: totalPages)
        claimed = PresentPages(count: totalPages)
        discarded = PresentPages(count: totalPages)
    }

    /// Claims the unclaimed run starting at `page` (at most to `end`); empty if `page` is claimed.
    mutating func claim(from page: PagerPage, before end: PagerPage) -> Range<PagerPage> {
        var stop = page
        while stop < end, !claimed.contains(stop) { stop += 1 }
        _ = claimed.insert(page..<stop)
        return page..<stop
    }

    /// Whether a thread has claimed one of `pages` and not installed it yet (its copy is in
    /// flight). A page given back is claimed and never installed from the snapshot, so it is
    /// not one: a second discard of it would otherwise wait for the whole fill.
    func installing(_ pages: Range<PagerPage>) -> Bool {
        pages.contains { claimed.contains($0) && !present.contains($0) && !discarded.contains($0) }
    }

    /// Records pages an ioctl of `installer` just put in memory.
    mutating func recordInstalled(_ pages: Range<PagerPage>, by installer: PageInstaller) {
        // A page the guest gave back and touched again is installed twice: recorded the first time.
        if installer == .faultHandler, recording != nil {
            for page in pages where !present.contains(page) { recording?.append(page..<page + 1) }
        }
        let added = present.insert(pages)
        switch installer {
        case .faultHandler:
            demandPages += added
        case .backgroundFill: backgroundPages += added
        case .prefetch: prefetchPages += added
        }
    }

    /// The counters as the public statistics type.
    func statistics(faultLatency: FaultLatencySummary) -> PagingStatistics {
        PagingStatistics(
            totalPages: present.count, presentPages: present.setCount, demandFaults: demandFaults,
            demandZeroFaults: demandZeroFaults, demandPages: demandPages, backgroundPages: backgroundPages,
            prefetchPages: prefetchPages, untouchedPages: untouchedPages, alreadyPresentFaults: alreadyPresentFaults,
            fillWaitFaults: fillWaitFaults, workingSetPages: workingSetPages, complete: complete,
            failure: failure, fillDurationMilliseconds: fillNanoseconds.map { Double($0) / 1_000_000 },
            faultLatency: faultLatency)
    }
}

/// Which paging thread installed a page, and why.
enum PageInstaller {
    case faultHandler
    case backgroundFill
    /// The fill, streaming a working set at resume.
    case prefetch
}

/// The pages the fault handler installs while a working set is recorded, in order. Its storage
/// is reserved up front, so recording allocates nothing on the fault path; pages past the
/// capacity are not recorded.
struct WorkingSetRecording {
    private(set) var pages: [PagerPage]
    let capacity: Int
    /// Pages installed from this time on (monotonic nanoseconds) are not recorded.
    let deadline: UInt64

    init(capacity: Int, deadline: UInt64) {
        self.capacity = capacity
        self.deadline = deadline
        pages = []
        pages.reserveCapacity(capacity)
    }

    mutating func append(_ installed: Range<PagerPage>) {
        guard MonotonicClock.nanoseconds() < deadline else { return }
        for page in installed where pages.count < capacity { pages.append(page) }
    }
}

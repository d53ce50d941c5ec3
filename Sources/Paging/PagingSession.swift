import Glibc
import GuestMemory
import LinuxSystem
import Synchronization

/// Everything the fault handler and the background fill share: the userfaultfd, the regions,
/// the page source, the ledger, and the signals that end both threads.
///
/// Ending has three ways, and only one happens: complete (the handler finishes after the fill:
/// every page present, ranges unregistered, descriptor closed), failed (a page could not be
/// served: the descriptor stays open for good so faulting threads never resume on wrong
/// memory), or halted by `LazyPager.stop`.
final class PagingSession: Sendable {
    let regions: [PagedRegion]
    let source: any PageSource
    let userfault: UserfaultDescriptor
    let ledger: Locked<PagingLedger>
    let latency = FaultLatencyRecorder()
    /// Set by `halt` or a failure: the handler and the fill leave their loops.
    let halted = Atomic<Bool>(false)
    /// Set by the fill once it has installed or found every page.
    let filled = Atomic<Bool>(false)
    /// Wakes the handler's poll when `halted` or `filled` is set.
    let handlerWakeup: EventNotifier
    /// Given when the restore completes, fails or is stopped.
    let finished: EventNotifier
    /// Given when the fill's first thread is past recording and prefetch (or on a stop): the other fill threads start.
    let walkOpen: EventNotifier
    /// The working set the fill streams first, if any.
    let prefetch: WorkingSet?
    /// Records the working set of the first seconds, if asked.
    let recorder: WorkingSetRecorder?
    /// One huge page of zeros, copied in where hugetlbfs has no UFFDIO_ZEROPAGE; nil without hugetlbfs regions.
    private let zeroUnit: ZeroPages?

    private let failureHandler = Locked<(@Sendable (String) -> Void)?>(nil)
    private let startTime = Atomic<UInt64>(0)

    init(
        regions: [PagedRegion], source: any PageSource, userfault: UserfaultDescriptor, prefetch: WorkingSet?,
        recorder: WorkingSetRecorder?
    ) throws(PagingError) {
        self.regions = regions
        self.source = source
        self.userfault = userfault
        self.prefetch = prefetch
        self.recorder = recorder
        ledger = Locked(PagingLedger(totalPages: regions.last.map { $0.pages.upperBound.rawValue } ?? 0))
        let largestUnit = regions.map(\.unitPages).max() ?? 1
        zeroUnit = largestUnit > 1 ? ZeroPages(pageCount: Int(largestUnit)) : nil
        do { handlerWakeup = try EventNotifier(); finished = try EventNotifier(); walkOpen = try EventNotifier() } catch { throw .system(error) }
    }

    /// Notes the start time and who to tell about a failure; before the threads start.
    func begin(onFailure: @escaping @Sendable (String) -> Void) {
        failureHandler.withLock { $0 = onFailure }
        let now = MonotonicClock.nanoseconds()
        startTime.store(now, ordering: .relaxed)
        if let recorder {
            let totalPages = regions.last.map { $0.pages.upperBound.rawValue } ?? 0
            let capacity = Int(min(totalPages, UInt64(WorkingSetRecorder.maximumPages)))
            ledger.withLock { $0.recording = WorkingSetRecording(capacity: capacity, deadline: now + recorder.nanoseconds) }
        }
    }

    /// When the working-set recording ends (monotonic nanoseconds), nil if none runs.
    var recordingDeadline: UInt64? {
        ledger.withLock { $0.recording?.deadline }
    }

    /// Ends the recording and hands the set (pages in the source's numbering) to the recorder's owner.
    func finishRecording() {
        guard let recorder else { return }
        let recorded = ledger.withLock { ledger -> [PagerPage] in
            let pages = ledger.recording?.pages ?? []
            ledger.recording = nil
            ledger.workingSetPages = UInt64(pages.count)
            return pages
        }
        var references: [PageReference] = []
        references.reserveCapacity(recorded.count)
        for page in recorded {
            guard let region = regions.last(where: { $0.firstPage <= page }) else { continue }
            references.append(PageReference(region: region.index, page: region.sourcePage(page)))
        }
        recorder.store(WorkingSet(
            fingerprint: recorder.fingerprint, pages: references, recordedMilliseconds: UInt32(recorder.nanoseconds / 1_000_000)))
    }

    /// The region holding host address `address`.
    func region(containing address: UInt64) -> PagedRegion? {
        for region in regions where region.contains(hostAddress: address) { return region }
        return nil
    }

    /// Whether the source holds data in any of `pages` of `region`.
    func holdsData(_ pages: Range<PagerPage>, of region: PagedRegion) -> Bool {
        pages.contains { !source.isZeroPage(region: region.index, page: region.sourcePage($0)) }
    }

    /// Claims huge page `unit` of `region` for a bulk install, unless it holds no data (left to
    /// the backing, which reads as zeros once unregistered) or is claimed already.
    func claimForFill(_ unit: Range<PagerPage>, of region: PagedRegion) -> Bool {
        guard holdsData(unit, of: region) else { return false }
        return ledger.withLock { ledger -> Bool in
            guard !ledger.claimed.contains(unit.lowerBound) else { return false }
            _ = ledger.claimed.insert(unit)
            return true
        }
    }

    /// Installs `pages` of `region` zero-filled; see `install`. On hugetlbfs, whole huge pages
    /// copied from the zero buffer, one per call.
    func installZeroPages(
        _ pages: Range<PagerPage>, of region: PagedRegion, by installer: PageInstaller, watching watched: PagerPage
    ) throws(UserfaultError) -> Bool {
        if region.installsHugePages, let zeroUnit {
            return try install(pages, of: region, by: installer, watching: watched) { (_, start) throws(UserfaultError) in
                try zeroUnit.withPages(Int(region.unitPages)) { (zeros) throws(UserfaultError) in try userfault.copy(to: start, from: zeros) }
            }
        }
        return try install(pages, of: region, by: installer, watching: watched) { (page, start) throws(UserfaultError) in
            try userfault.zeroPages(start: start, length: (pages.upperBound - page) * PageSize.bytes64)
        }
    }

    /// Installs `pages` of `region` copied from `buffer`, which holds exactly those pages; see `install`.
    func installCopies(
        _ pages: Range<PagerPage>, of region: PagedRegion, from buffer: RawSpan,
        by installer: PageInstaller, watching watched: PagerPage
    ) throws(UserfaultError) -> Bool {
        precondition(UInt64(buffer.byteCount) == (pages.upperBound - pages.lowerBound) * PageSize.bytes64, "the buffer holds exactly the pages")
        return try install(pages, of: region, by: installer, watching: watched) { (page, start) throws(UserfaultError) in
            let offset = Int((page - pages.lowerBound) * PageSize.bytes64)
            return try userfault.copy(to: start, from: buffer.extracting(droppingFirst: offset))
        }
    }

    /// Installs `pages` of `region` with `fill(page, hostAddress)` (which installs from `page`
    /// on and returns the bytes installed before a page already present), waking threads
    /// parked on them, and records them for `installer`. Units already present (EEXIST: the
    /// other thread won; a page, or a whole huge page) are stepped over and the rest still
    /// installed. Returns whether page `watched` was in one of those already present.
    private func install(
        _ pages: Range<PagerPage>, of region: PagedRegion, by installer: PageInstaller, watching watched: PagerPage,
        _ fill: (PagerPage, UInt64) throws(UserfaultError) -> UInt64
    ) throws(UserfaultError) -> Bool {
        var page = pages.lowerBound
        var watchedWasPresent = false
        while page < pages.upperBound {
            let installed = try fill(page, region.hostAddress(ofPage: page)) / PageSize.bytes64
            if installed > 0 {
                let done = page..<page + installed
                ledger.withLock { $0.recordInstalled(done, by: installer) }
            }
            page += installed
            if page < pages.upperBound {
                // The kernel stopped at a unit that is already present.
                let present = region.unit(of: page)
                if present.contains(watched) { watchedWasPresent = true }
                page = present.upperBound
            }
        }
        return watchedWasPresent
    }

    /// Before `range` (bytes) of `region` goes back to the host: waits out installs of those pages
    /// already under way, then marks them claimed (the fill never fetches them) and discarded
    /// (a fault on one gets zeros), so no stale snapshot page lands on memory the guest gave
    /// back and may reuse. Returns at once once the restore has ended.
    func prepareDiscard(of region: GuestRegion, range: Range<UInt64>) {
        guard let paged = regions.first(where: { $0.region === region }) else { return }
        // The whole units inside the (page-aligned) range: hugetlbfs gives back only whole huge
        // pages (`GuestRegion.discard`); elsewhere a unit is a page.
        let unitBytes = paged.unitPages * PageSize.bytes64
        let first = (range.lowerBound + unitBytes - 1) / unitBytes * unitBytes, end = range.upperBound / unitBytes * unitBytes
        guard first < end else { return }
        let pages = paged.firstPage + first / PageSize.bytes64..<paged.firstPage + end / PageSize.bytes64
        while true {
            let busy = ledger.withLock { ledger -> Bool in
                if ledger.complete || ledger.failure != nil || halted.load(ordering: .acquiring) { return false }
                if ledger.installing(pages) { return true }
                _ = ledger.claimed.insert(pages)
                _ = ledger.discarded.insert(pages)
                return false
            }
            guard busy else { return }
            usleep(50)  // one UFFDIO_COPY of at most a batch: microseconds
        }
    }

    /// Stops serving for good: records `message` (the first failure wins), keeps the descriptor
    /// open so faulting threads stay parked, ends both threads, then tells the owner.
    func fail(_ message: String) {
        let first = ledger.withLock { ledger in
            guard ledger.failure == nil, !ledger.complete else { return false }
            ledger.failure = message
            return true
        }
        guard first else { return }
        userfault.keepOpenUntilExit()
        halted.store(true, ordering: .releasing)
        handlerWakeup.signal()
        walkOpen.signal()
        let handler = failureHandler.withLock { handler in
            defer { handler = nil }
            return handler
        }
        handler?(message)
        finished.signal()
    }

    /// Asks the handler and the fill to leave their loops (VM exit); the owner joins them.
    func halt() {
        halted.store(true, ordering: .releasing)
        handlerWakeup.signal()
        walkOpen.signal()
        failureHandler.withLock { $0 = nil }
    }

    /// Called by the fill once every page that holds data is installed or found present.
    func fillDone() {
        filled.store(true, ordering: .releasing)
        handlerWakeup.signal()
    }

    /// Run by the handler after `fillDone`, once its own installs are recorded: no fault can
    /// be pending for a missing page now, so the ranges are unregistered (waking any thread
    /// whose fault was never read) and the descriptor closed.
    func complete() {
        ledger.withLock { ledger in
            // Bits still clear belong to pages neither thread installed: zero pages the fill left
            // to the backing (a fresh memfd or file reads them as zero once unregistered), or
            // pages the kernel had already (EEXIST), e.g. written before the pager started.
            ledger.untouchedPages += ledger.present.insert(ledger.present.all)
        }
        for region in regions {
            // Closing unregisters too; a failure here changes nothing for the guest.
            try? userfault.unregister(start: region.hostStart, length: region.sizeInBytes)
        }
        userfault.close()
        let elapsed = MonotonicClock.nanoseconds() - startTime.load(ordering: .relaxed)
        ledger.withLock { ledger in
            ledger.complete = true
            ledger.fillNanoseconds = elapsed
        }
        failureHandler.withLock { $0 = nil }
        finished.signal()
    }
}

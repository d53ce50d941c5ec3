import LinuxSystem
import Glibc
import GuestMemory
import SystemPackage

/// The fault-handler thread: waits in poll(2) on the userfaultfd, reads fault messages in
/// batches and serves each faulting page — alone, or with the missing pages of its small
/// aligned cluster in one read and one copy when the previous fault was close by. Finishes
/// the restore once the fill is done. Allocates nothing in its loop; holds the ledger lock
/// only for bit operations. It claims the pages it fetches in the ledger first; a fault on a
/// page the fill has claimed is left to the fill's copy, which wakes it (no page is fetched twice).
///
/// Why clusters only near the previous fault (measured here, release build, a plain thread,
/// snapshot source): one page costs ~14 µs from message to copy, a 16-page cluster ~75 µs,
/// mostly the CRC check of every page. Sequential touching goes ~3x faster with clusters
/// (one fault per 16 pages); random touching would pay 5x on every fault.
struct FaultHandler {
    let session: PagingSession
    /// Pages served per fault at most: the aligned group of this many holding the faulting page.
    let clusterPages: UInt64
    /// The last data page that faulted (pager-wide number); `.noPage` before the first.
    private var lastDataFault = PagerPage.noPage

    init(session: PagingSession, clusterPages: UInt64) {
        self.session = session
        self.clusterPages = clusterPages
    }

    /// Messages read per read(2).
    static let batchSize = 64

    mutating func run() {
        let events = UserfaultEventBuffer(capacity: Self.batchSize)
        // Room for a cluster, and for a whole huge page where a region is on hugetlbfs.
        let buffer = PageBuffer(pageCount: Int(max(clusterPages, session.regions.map(\.unitPages).max() ?? 1)))
        var polled = [Poll.input(session.userfault.rawValue), Poll.input(session.handlerWakeup.rawValue)]
        while true {
            do throws(SystemError) { _ = try Poll.wait(&polled, milliseconds: -1) } catch {
                session.fail("lazy restore stopped: poll on the userfaultfd failed: \(error.errno)")
                return
            }
            if polled[1].revents != 0 {
                if session.halted.load(ordering: .acquiring) { return }
                if session.filled.load(ordering: .acquiring) {
                    session.complete()
                    return
                }
            }
            let faults = polled[0].revents
            if faults & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                session.fail("lazy restore stopped: the userfaultfd reported an error (poll events 0x\(String(faults, radix: 16)))")
                return
            }
            if faults & Int16(POLLIN) != 0, !serveBatch(events, buffer) { return }
        }
    }

    /// Reads the pending messages and serves each; false once the pager has failed.
    private mutating func serveBatch(_ events: UserfaultEventBuffer, _ buffer: PageBuffer) -> Bool {
        let count: Int
        do { count = try session.userfault.readEvents(into: events) } catch {
            session.fail("lazy restore stopped: \(error)")
            return false
        }
        let readTime = MonotonicClock.nanoseconds()
        for index in 0..<count {
            guard case .pageFault(let address, _) = events[index] else { continue }
            // After a failure or stop nothing more is served.
            guard !session.halted.load(ordering: .acquiring), serve(address, readAt: readTime, buffer) else { return false }
        }
        return true
    }

    /// Installs the page at host address `address` (and the missing pages of its cluster), or
    /// wakes its thread if it is already present; false once the pager has failed. The
    /// latency recorded runs from `readTime` until the faulting page is in.
    private mutating func serve(_ address: UInt64, readAt readTime: UInt64, _ buffer: PageBuffer) -> Bool {
        guard let region = session.region(containing: address) else {
            session.fail("lazy restore stopped: fault at host address 0x\(String(address, radix: 16)) lies in no region")
            return false
        }
        let page = region.page(atHostAddress: address)
        if region.installsHugePages { return serveHugePage(page, of: region, readAt: readTime, buffer) }
        let sourcePage = region.sourcePage(page)
        let zero = session.source.isZeroPage(region: region.index, page: sourcePage)
        // A cluster only where faults cluster: a data fault at most a cluster's length from the
        // previous one brings in its aligned cluster; an isolated fault, one page. Zero pages
        // cost no read and no check: their whole zero stretch in the cluster goes in at once.
        let clusterStart = page - sourcePage.rawValue % clusterPages
        let cluster = clusterStart..<min(clusterStart + clusterPages, region.pages.upperBound)
        let near = !zero && lastDataFault != .noPage && max(page, lastDataFault) - min(page, lastDataFault) <= clusterPages
        if !zero { lastDataFault = page }
        let claim = session.ledger.withLock { ledger -> FaultClaim in
            if ledger.discarded.contains(page) { return .discarded }
            if ledger.present.contains(page) { return .present }
            // Claimed but not present: the fill is fetching it, and its copy will wake this fault.
            if ledger.claimed.contains(page) { return .fill }
            var run = ledger.claimed.missingRun(around: page, within: zero || near ? cluster : page..<page + 1)
            if zero { run = zeroPages(around: page, within: run, of: region) }
            _ = ledger.claimed.insert(run)
            return .run(run)
        }
        do throws(ServeFailure) {
            let wasPresent: Bool
            switch claim {
            case .present:
                // The fill (or an earlier cluster) installed it after this thread faulted.
                try wake(page, in: region)
                recordLatency(since: readTime)
                session.ledger.withLock { $0.alreadyPresentFaults += 1 }
                return true
            case .fill:
                session.ledger.withLock { $0.fillWaitFaults += 1 }
                return true
            case .discarded:
                // Given back by the guest since: zeros, never the snapshot's stale page.
                do { wasPresent = try session.installZeroPages(page..<page + 1, of: region, by: .faultHandler, watching: page) } catch {
                    throw .userfault(error)
                }
            case .run(let pages) where zero:
                do { wasPresent = try session.installZeroPages(pages, of: region, by: .faultHandler, watching: page) } catch {
                    throw .userfault(error)
                }
            case .run(let pages):
                wasPresent = try copyFromSource(pages, of: region, buffer, watching: page)
            }
            try finish(wasPresent: wasPresent, waking: page..<page + 1, in: region, zero: zero, readAheadFrom: page, since: readTime)
            return true
        } catch {
            switch error {
            case .read(let pages, let cause):
                let which = pages.count == 1 ? "page \(pages.lowerBound)" : "pages \(pages.lowerBound)..<\(pages.upperBound)"
                session.fail("lazy restore stopped: region \(region.region.name) \(which) cannot be served: \(cause)")
            case .userfault(let cause):
                session.fail("lazy restore stopped: region \(region.region.name) page \(sourcePage): \(cause)")
            }
            return false
        }
    }

    /// hugetlbfs: userfaultfd installs a whole huge page or nothing, so a fault claims its whole
    /// unit (the fill and discards claim whole units too) and installs it in one UFFDIO_COPY,
    /// from the source, or from the zero buffer when the source holds no data in it.
    private mutating func serveHugePage(_ page: PagerPage, of region: PagedRegion, readAt readTime: UInt64, _ buffer: PageBuffer) -> Bool {
        let unit = region.unit(of: page)
        let claim = session.ledger.withLock { ledger -> FaultClaim in
            if ledger.discarded.contains(page) { return .discarded }
            if ledger.present.contains(page) { return .present }
            if ledger.claimed.contains(page) { return .fill }
            _ = ledger.claimed.insert(unit)
            return .run(unit)
        }
        do throws(ServeFailure) {
            let wasPresent: Bool
            // Whether the huge page went in as zeros; asked of the source only for a page this fault installs.
            var zero = false
            switch claim {
            case .fill:
                session.ledger.withLock { $0.fillWaitFaults += 1 }
                return true
            case .present:
                wasPresent = true
            case .discarded, .run:
                zero = claim == .discarded || !session.holdsData(unit, of: region)
                if zero {
                    do { wasPresent = try session.installZeroPages(unit, of: region, by: .faultHandler, watching: page) } catch {
                        throw .userfault(error)
                    }
                } else {
                    wasPresent = try copyFromSource(unit, of: region, buffer, watching: page)
                }
            }
            try finish(wasPresent: wasPresent, waking: unit, in: region, zero: zero, readAheadFrom: unit.upperBound - 1, since: readTime)
            return true
        } catch {
            switch error {
            case .read(let pages, let cause):
                session.fail("lazy restore stopped: region \(region.region.name) huge page at pages \(pages.lowerBound)..<\(pages.upperBound) cannot be served: \(cause)")
            case .userfault(let cause):
                session.fail("lazy restore stopped: region \(region.region.name) huge page at page \(region.sourcePage(unit.lowerBound)): \(cause)")
            }
            return false
        }
    }

    /// Ends a served fault: wakes `woken` if the faulting page was in already (its thread parked
    /// before the other install woke it), records the latency and counts the fault; a data fault
    /// tells the fill to read on after `hint`.
    private func finish(
        wasPresent: Bool, waking woken: Range<PagerPage>, in region: PagedRegion, zero: Bool, readAheadFrom hint: PagerPage,
        since readTime: UInt64
    ) throws(ServeFailure) {
        if wasPresent { try wake(woken, in: region) }
        recordLatency(since: readTime)
        session.ledger.withLock { ledger in
            if wasPresent {
                ledger.alreadyPresentFaults += 1
            } else {
                ledger.demandFaults += 1
                if zero { ledger.demandZeroFaults += 1 } else { ledger.readaheadHint = hint }
            }
        }
    }

    /// Reads `pages` of `region` from the source into the buffer and copies them in; returns
    /// whether page `watched` was already present.
    private func copyFromSource(
        _ pages: Range<PagerPage>, of region: PagedRegion, _ buffer: PageBuffer, watching watched: PagerPage
    ) throws(ServeFailure) -> Bool {
        do {
            try buffer.withMutablePages(pages.count) { (bytes) throws(PageSourceError) in
                try session.source.readPages(region: region.index, firstPage: region.sourcePage(pages.lowerBound), into: &bytes)
            }
        } catch {
            throw .read(region.sourcePage(pages.lowerBound)..<region.sourcePage(pages.upperBound), error)
        }
        do {
            return try buffer.withPages(pages.count) { (bytes) throws(UserfaultError) in
                try session.installCopies(pages, of: region, from: bytes, by: .faultHandler, watching: watched)
            }
        } catch {
            throw .userfault(error)
        }
    }

    private func recordLatency(since readTime: UInt64) {
        session.latency.record(nanoseconds: MonotonicClock.nanoseconds() - readTime)
    }

    /// The zero pages next to `page` (itself zero) inside `run`.
    private func zeroPages(around page: PagerPage, within run: Range<PagerPage>, of region: PagedRegion) -> Range<PagerPage> {
        let source = session.source
        var start = page
        while start > run.lowerBound, source.isZeroPage(region: region.index, page: region.sourcePage(start - 1)) { start -= 1 }
        var end = page + 1
        while end < run.upperBound, source.isZeroPage(region: region.index, page: region.sourcePage(end)) { end += 1 }
        return start..<end
    }

    private func wake(_ page: PagerPage, in region: PagedRegion) throws(ServeFailure) {
        try wake(page..<page + 1, in: region)
    }

    private func wake(_ pages: Range<PagerPage>, in region: PagedRegion) throws(ServeFailure) {
        do { try session.userfault.wake(start: region.hostAddress(ofPage: pages.lowerBound), length: UInt64(pages.count) * PageSize.bytes64) } catch {
            throw .userfault(error)
        }
    }
}

/// What the handler may do about a fault, decided under the ledger lock.
private enum FaultClaim: Equatable {
    /// The page is in: only wake the thread.
    case present
    /// The fill has claimed the page and will install it.
    case fill
    /// The guest gave the page back (balloon) during the restore: it is served as zeros.
    case discarded
    /// The handler claimed these pages (the faulting one among them) and installs them.
    case run(Range<PagerPage>)
}

/// Why a fault could not be served: the source could not deliver pages (numbered as the
/// source numbers them), or the kernel refused an ioctl.
private enum ServeFailure: Error {
    case read(Range<PageIndex>, PageSourceError)
    case userfault(UserfaultError)
}

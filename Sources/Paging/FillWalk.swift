import LinuxSystem
import Synchronization

/// The background fill's order, one claimed stretch at a time: every region in order, a window
/// of up to a batch at a time, taking the pages nobody has claimed that hold data (long zero
/// stretches left out, short ones riding along); after each window, the batch after the latest
/// fault first, if there was one since the last look. On hugetlbfs a stretch is one whole huge
/// page. Each stretch is claimed as it is handed out, so the fill can ask the source for the
/// next one while it installs the last.
struct FillWalk {
    /// The walk the fill's threads share, how many of them are still walking, and their
    /// shares of the working set once the first thread has dealt them.
    final class Shared: Sendable {
        let threads: Int
        private let walk: Locked<FillWalk>
        private let walking: Atomic<Int>
        private let dealt = Locked<PrefetchShares?>(nil)

        init(session: PagingSession, threads: Int) {
            self.threads = threads
            walk = Locked(FillWalk(session: session))
            walking = Atomic(threads)
        }

        func deal(_ shares: PrefetchShares) { dealt.withLock { $0 = shares } }

        var shares: PrefetchShares? { dealt.withLock { $0 } }

        func next() -> Stretch? { walk.withLock { $0.next() } }

        /// True for the last thread to leave.
        func leave() -> Bool { walking.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 }
    }

    /// Pages claimed for the fill, to be read in one call and installed.
    struct Stretch {
        let region: PagedRegion
        let pages: Range<PagerPage>

        var sourceRun: PageRun { PageRun(region: region.index, firstPage: region.sourcePage(pages.lowerBound), count: pages.count) }
    }

    /// Part of a region whose unclaimed data pages are being handed out.
    private struct Window {
        let region: PagedRegion
        var next: PagerPage
        let end: PagerPage
        /// Whether the fault hint is looked at once this window is done (not after the hint's own).
        let isMainWalk: Bool
    }

    private let session: PagingSession
    private var regionIndex = 0
    private var cursor: PagerPage
    private var window: Window?

    init(session: PagingSession) {
        self.session = session
        cursor = session.regions.first?.firstPage ?? 0
    }

    /// The next stretch, claimed; nil when the walk is done or the pager has stopped.
    mutating func next() -> Stretch? {
        while !session.halted.load(ordering: .acquiring) {
            if var current = window {
                let stretch = current.region.installsHugePages ? claimHugePage(&current) : claimStretch(&current)
                window = current
                if let stretch { return stretch }
                window = current.isMainWalk ? hintedWindow() : nil
                continue
            }
            guard regionIndex < session.regions.count else { return nil }
            let region = session.regions[regionIndex]
            guard cursor < region.pages.upperBound else {
                regionIndex += 1
                if regionIndex < session.regions.count { cursor = session.regions[regionIndex].firstPage }
                continue
            }
            let span = region.installsHugePages ? region.unitPages : BackgroundFill.batchPages
            let candidates = cursor..<min(cursor + span, region.pages.upperBound)
            // The walk goes on after the run it takes: a window may hold more than one.
            let run: Range<PagerPage>? = region.installsHugePages ? candidates : session.ledger.withLock { $0.claimed.firstMissingRun(in: candidates) }
            cursor = run?.upperBound ?? candidates.upperBound
            if let run { window = Window(region: region, next: run.lowerBound, end: run.upperBound, isMainWalk: true) }
        }
        return nil
    }

    /// The batch after the latest fault, if there was one since the last look.
    private func hintedWindow() -> Window? {
        guard let hint = session.ledger.withLock({ ledger -> PagerPage? in
            defer { ledger.readaheadHint = nil }
            return ledger.readaheadHint
        }) else { return nil }
        guard let region = session.regions.last(where: { $0.firstPage <= hint }), hint + 1 < region.pages.upperBound else { return nil }
        if region.installsHugePages {
            let unit = region.unit(of: hint + 1)
            return Window(region: region, next: unit.lowerBound, end: unit.upperBound, isMainWalk: false)
        }
        let candidates = hint + 1..<min(hint + 1 + BackgroundFill.batchPages, region.pages.upperBound)
        guard let run = session.ledger.withLock({ $0.claimed.firstMissingRun(in: candidates) }) else { return nil }
        return Window(region: region, next: run.lowerBound, end: run.upperBound, isMainWalk: false)
    }

    /// Claims the window's next pages up to a long zero stretch (short zero gaps included).
    private func claimStretch(_ window: inout Window) -> Stretch? {
        while window.next < window.end {
            let page = window.next
            let zeros = zeroStretch(from: page, before: window.end, of: window.region)
            if zeros >= BackgroundFill.shortestZeroStretch || page + zeros == window.end {
                window.next += zeros  // left to the backing: see BackgroundFill's comment
                continue
            }
            var end = page + max(zeros, 1)
            while end < window.end {
                let gap = zeroStretch(from: end, before: window.end, of: window.region)
                if gap >= BackgroundFill.shortestZeroStretch { break }
                end += max(gap, 1)
            }
            // The handler may have claimed some of them since the window was found.
            let claimed = session.ledger.withLock { $0.claim(from: page, before: end) }
            guard !claimed.isEmpty else {
                window.next += 1
                continue
            }
            window.next = claimed.upperBound
            return Stretch(region: window.region, pages: claimed)
        }
        return nil
    }

    /// Claims the window's huge page, unless it holds no data or is claimed already.
    private func claimHugePage(_ window: inout Window) -> Stretch? {
        let unit = window.next..<window.end
        window.next = window.end
        guard !unit.isEmpty, session.claimForFill(unit, of: window.region) else { return nil }
        return Stretch(region: window.region, pages: unit)
    }

    /// How many pages from `page` on (before `end`) the source knows are zero.
    private func zeroStretch(from page: PagerPage, before end: PagerPage, of region: PagedRegion) -> UInt64 {
        session.source.zeroPageCount(region: region.index, from: region.sourcePage(page), before: region.sourcePage(end))
    }
}

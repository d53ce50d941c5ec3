import LinuxSystem
import GuestMemory

extension BackgroundFill {
    /// Pages received and installed per step of the prefetch stream (512 KiB): small enough that
    /// a vCPU waiting on a page near the front resumes soon, large enough to be received straight
    /// into the buffer and installed in few ioctls.
    static let prefetchChunkPages = 128

    /// Claims every page of `workingSet` nobody has claimed, fetches the huge pages it touches on
    /// hugetlbfs (one read each), then deals the rest out to the fill's threads (`PrefetchShares`)
    /// and installs this thread's share; the others start on theirs once they are dealt. False
    /// once the pager has failed.
    func prefetch(_ workingSet: WorkingSet, _ buffer: PageBuffer) -> Bool {
        // The claimed pages as pager-wide numbers, each marked zero or not; allocated once, before any install.
        var order: [PrefetchShares.Entry] = []
        // hugetlbfs regions: the huge pages the set touches, in its order, each fetched whole.
        var hugePages: [(unit: Range<PagerPage>, region: PagedRegion)] = []
        order.reserveCapacity(workingSet.pages.count)
        session.ledger.withLock { ledger in
            for reference in workingSet.pages {
                let region = session.regions[reference.region]
                let page = region.pagerPage(reference.page)
                if region.installsHugePages {
                    let unit = region.unit(of: page)
                    if hugePages.last?.unit != unit { hugePages.append((unit, region)) }
                    continue
                }
                guard !ledger.claimed.contains(page) else { continue }
                _ = ledger.claimed.insert(page..<page + 1)
                order.append(PrefetchShares.Entry(page: page, region: region, zero: session.source.isZeroPage(region: reference.region, page: reference.page)))
            }
            ledger.workingSetPages = UInt64(workingSet.pages.count)
        }
        for (unit, region) in hugePages {
            guard fillHugePage(unit, of: region, buffer, by: .prefetch) else { return false }
        }
        let shares = PrefetchShares(order, threads: walk.threads, runEntries: Self.prefetchChunkPages)
        walk.deal(shares)
        guard var stream = openShare(shares) else { return false }
        // The front of the set alone, at full speed: the guest's first touches wait for it. Then
        // the other threads start on their shares.
        let runs = shares.runs[0]
        guard install(runs.prefix(1), of: shares, from: &stream, buffer) else { return false }
        session.walkOpen.signal()
        return install(runs.dropFirst(), of: shares, from: &stream, buffer)
    }

    /// This thread's share of the working set, once the first thread has dealt it and installed
    /// the front of the set; false once the pager has failed.
    func installShare(_ shares: PrefetchShares, _ buffer: PageBuffer) -> Bool {
        guard var stream = openShare(shares) else { return false }
        return install(shares.runs[index][...], of: shares, from: &stream, buffer)
    }

    /// The stream of this thread's data pages; nil once the pager has failed.
    private func openShare(_ shares: PrefetchShares) -> (any PageStream)? {
        do { return try session.source.streamPages(shares.references[index]) } catch {
            session.fail("lazy restore stopped: the working-set prefetch cannot start: \(error)")
            return nil
        }
    }

    /// Installs `runs` of the set in its order: zero pages with UFFDIO_ZEROPAGE where they come,
    /// data pages from `stream` (this thread's own: one batched transfer from a page server);
    /// false once the pager has failed.
    private func install(_ runs: ArraySlice<Range<Int>>, of shares: PrefetchShares, from stream: inout any PageStream, _ buffer: PageBuffer) -> Bool {
        let order = shares.order
        do {
            for run in runs {
                var next = run.lowerBound
                while next < run.upperBound {
                    if session.halted.load(ordering: .acquiring) { return false }
                    if order[next].zero {
                        let entry = order[next]
                        _ = try session.installZeroPages(entry.page..<entry.page + 1, of: entry.region, by: .prefetch, watching: .noPage)
                        next += 1
                        continue
                    }
                    // The next data pages of the run, as many as a chunk holds.
                    var end = next
                    while end < run.upperBound, end - next < Self.prefetchChunkPages, !order[end].zero { end += 1 }
                    do {
                        try buffer.withMutablePages(end - next) { (bytes) throws(PageSourceError) in try stream.receive(into: &bytes) }
                    } catch {
                        session.fail("lazy restore stopped: the working-set prefetch failed: \(error)")
                        return false
                    }
                    if session.halted.load(ordering: .acquiring) { return false }
                    // One UFFDIO_COPY per run of neighbouring pages.
                    var first = next
                    while first < end {
                        var last = first + 1
                        while last < end, order[last].page == order[last - 1].page + 1, order[last].region.index == order[first].region.index {
                            last += 1
                        }
                        let offset = (first - next) * PageSize.bytes
                        let length = (last - first) * PageSize.bytes
                        _ = try buffer.withPages(end - next) { (bytes) throws(UserfaultError) in
                            try session.installCopies(order[first].page..<order[last - 1].page + 1, of: order[first].region,
                                                      from: bytes.extracting(offset..<offset + length), by: .prefetch, watching: .noPage)
                        }
                        first = last
                    }
                    next = end
                }
            }
            return true
        } catch {
            session.fail("lazy restore stopped: the working-set prefetch could not install a page: \(error)")
            return false
        }
    }
}

/// A working set's claimed pages in the set's order, dealt out to the fill's threads: runs of
/// consecutive entries, in turn, so that each thread streams its own list (on a connection of
/// its own from a page server) and all of them move through the set from the front together.
final class PrefetchShares: Sendable {
    struct Entry: Sendable {
        let page: PagerPage
        let region: PagedRegion
        let zero: Bool
    }

    let order: [Entry]
    /// Per thread: the runs of `order` it installs, and the data pages among them, in order.
    let runs: [[Range<Int>]]
    let references: [[PageReference]]

    init(_ order: [Entry], threads: Int, runEntries: Int) {
        var runs = [[Range<Int>]](repeating: [], count: threads)
        var references = [[PageReference]](repeating: [], count: threads)
        for (number, start) in stride(from: 0, to: order.count, by: runEntries).enumerated() {
            let run = start..<min(start + runEntries, order.count)
            runs[number % threads].append(run)
            for entry in order[run] where !entry.zero {
                references[number % threads].append(PageReference(region: entry.region.index, page: entry.region.sourcePage(entry.page)))
            }
        }
        self.order = order
        self.runs = runs
        self.references = references
    }
}

import LinuxSystem
import GuestMemory

extension BackgroundFill {
    /// Pages received and installed per step of the prefetch stream (512 KiB): small enough that
    /// a vCPU waiting on a page near the front resumes soon, large enough to be received straight
    /// into the buffer and installed in few ioctls.
    static let prefetchChunkPages = 128

    /// Claims every page of `workingSet` nobody has claimed, then installs them in the set's
    /// order: zero pages with UFFDIO_ZEROPAGE where they come, data pages from one stream
    /// (one batched transfer from a page server); on hugetlbfs, the huge pages holding them
    /// first, one read each. False once the pager has failed.
    func prefetch(_ workingSet: WorkingSet, _ buffer: PageBuffer) -> Bool {
        // The claimed pages as pager-wide numbers, each marked zero or not; allocated once, before any install.
        var order: [(page: PagerPage, region: PagedRegion, zero: Bool)] = []
        var data: [PageReference] = []
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
                let zero = session.source.isZeroPage(region: reference.region, page: reference.page)
                order.append((page, region, zero))
                if !zero { data.append(reference) }
            }
            ledger.workingSetPages = UInt64(workingSet.pages.count)
        }
        for (unit, region) in hugePages {
            guard fillHugePage(unit, of: region, buffer, by: .prefetch) else { return false }
        }
        var stream: any PageStream
        do { stream = try session.source.streamPages(data) } catch {
            session.fail("lazy restore stopped: the working-set prefetch cannot start: \(error)")
            return false
        }
        var next = 0
        do {
            while next < order.count {
                if session.halted.load(ordering: .acquiring) { return false }
                if order[next].zero {
                    let entry = order[next]
                    _ = try session.installZeroPages(entry.page..<entry.page + 1, of: entry.region, by: .prefetch, watching: .noPage)
                    next += 1
                    continue
                }
                // The next data pages in the set's order, as many as a chunk holds.
                var end = next
                while end < order.count, end - next < Self.prefetchChunkPages, !order[end].zero { end += 1 }
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
            return true
        } catch {
            session.fail("lazy restore stopped: the working-set prefetch could not install a page: \(error)")
            return false
        }
    }
}

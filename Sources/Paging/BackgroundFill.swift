import LinuxSystem
import Glibc
import GuestMemory

/// The background fill thread: first streams the working set it was given (if any), in the
/// order the guest once touched it; then walks every region in order and installs each page
/// that holds data and nobody has claimed, a batch of up to 2 MiB at a time, so that soon no
/// fault can happen at all. While a working set is being recorded it waits, so that every page
/// the guest touches in that time faults and is recorded.
///
/// Long stretches of zero pages are left alone: the regions are fresh (a new memfd or file, or
/// anonymous memory), which read as zero once the pager unregisters them, and installing them
/// would allocate memory for nothing (shmem has no shared zero page: a 4 GiB guest holding
/// 1 GiB of data would cost 4 GiB). Until then a touch of one is a fault the handler serves
/// with UFFDIO_ZEROPAGE. The pages between long stretches are read in one call and copied in
/// one UFFDIO_COPY, short zero gaps included (the source zero-fills them), which saves an
/// ioctl per gap. It wakes as it installs: a vCPU parked on one of its pages resumes without
/// waiting for the handler, and waking costs one memory barrier when nobody waits (so
/// UFFDIO_COPY_MODE_DONTWAKE would buy nothing).
struct BackgroundFill {
    let session: PagingSession

    /// Pages per batch: 2 MiB.
    static let batchPages: UInt64 = 512
    /// Zero stretches at least this long are skipped; shorter ones ride along with the copy.
    static let shortestZeroStretch: UInt64 = 8

    func run() {
        let buffer = PageBuffer(pageCount: Int(Self.batchPages))
        if let deadline = session.recordingDeadline {
            guard waitForRecording(until: deadline) else { return }
        }
        if let workingSet = session.prefetch {
            guard prefetch(workingSet, buffer) else { return }
        }
        for region in session.regions {
            if region.installsHugePages {
                guard fillHugePages(of: region, buffer) else { return }
                continue
            }
            var cursor = region.firstPage
            while cursor < region.pages.upperBound {
                if session.halted.load(ordering: .acquiring) { return }
                let window = cursor..<min(cursor + Self.batchPages, region.pages.upperBound)
                guard let run = session.ledger.withLock({ $0.claimed.firstMissingRun(in: window) }) else {
                    cursor = window.upperBound
                    continue
                }
                guard fill(run, of: region, buffer), readAhead(buffer) else { return }
                cursor = run.upperBound
            }
        }
        session.fillDone()
    }

    /// Fetches the batch after the latest fault first, if there was one since the last look; false once the pager has failed.
    private func readAhead(_ buffer: PageBuffer) -> Bool {
        guard let hint = session.ledger.withLock({ ledger -> PagerPage? in
            defer { ledger.readaheadHint = nil }
            return ledger.readaheadHint
        }) else { return true }
        guard let region = session.regions.last(where: { $0.firstPage <= hint }), hint + 1 < region.pages.upperBound else { return true }
        if region.installsHugePages { return fillHugePage(region.unit(of: hint + 1), of: region, buffer, by: .backgroundFill) }
        let window = hint + 1..<min(hint + 1 + Self.batchPages, region.pages.upperBound)
        guard let run = session.ledger.withLock({ $0.claimed.firstMissingRun(in: window) }) else { return true }
        return fill(run, of: region, buffer)
    }

    /// Sleeps until the recording window ends, then hands the recorded set to the session's
    /// owner; false if the pager was stopped meanwhile.
    private func waitForRecording(until deadline: UInt64) -> Bool {
        while MonotonicClock.nanoseconds() < deadline {
            if session.halted.load(ordering: .acquiring) { return false }
            usleep(10_000)
        }
        session.finishRecording()
        return !session.halted.load(ordering: .acquiring)
    }

    /// Installs the unclaimed pages of `run` that hold data (at most a batch), claiming each
    /// stretch before reading it; false once the pager has failed.
    private func fill(_ run: Range<PagerPage>, of region: PagedRegion, _ buffer: PageBuffer) -> Bool {
        var page = run.lowerBound
        do {
            while page < run.upperBound {
                // After a failure or stop nothing more is installed, not even a batch already read.
                if session.halted.load(ordering: .acquiring) { return false }
                let zeros = zeroStretch(from: page, before: run.upperBound, of: region)
                if zeros >= Self.shortestZeroStretch || page + zeros == run.upperBound {
                    page += zeros  // left to the backing: see the type's comment
                    continue
                }
                // Pages up to the next long zero stretch (or the end), short zero gaps included.
                var end = page + max(zeros, 1)
                while end < run.upperBound {
                    let gap = zeroStretch(from: end, before: run.upperBound, of: region)
                    if gap >= Self.shortestZeroStretch { break }
                    end += max(gap, 1)
                }
                // The handler may have claimed some of them since the run was found.
                let claimed = session.ledger.withLock { $0.claim(from: page, before: end) }
                if claimed.isEmpty {
                    page += 1
                    continue
                }
                do {
                    try buffer.withMutablePages(claimed.count) { (bytes) throws(PageSourceError) in
                        try session.source.readPagesInBackground(region: region.index, firstPage: region.sourcePage(page), into: &bytes)
                    }
                } catch {
                    session.fail("lazy restore stopped: region \(region.region.name) pages \(region.sourcePage(page))..<\(region.sourcePage(claimed.upperBound)) cannot be read: \(error)")
                    return false
                }
                if session.halted.load(ordering: .acquiring) { return false }
                _ = try buffer.withPages(claimed.count) { (bytes) throws(UserfaultError) in
                    try session.installCopies(claimed, of: region, from: bytes, by: .backgroundFill, watching: .noPage)
                }
                page = claimed.upperBound
            }
            return true
        } catch {
            session.fail("lazy restore stopped: region \(region.region.name) page \(region.sourcePage(page)): \(error)")
            return false
        }
    }

    /// hugetlbfs: every huge page of `region` that holds data and nobody has claimed, in order,
    /// the one after the latest fault first; false once the pager has failed.
    private func fillHugePages(of region: PagedRegion, _ buffer: PageBuffer) -> Bool {
        var unit = region.unit(of: region.firstPage)
        while unit.lowerBound < region.pages.upperBound {
            if session.halted.load(ordering: .acquiring) { return false }
            guard fillHugePage(unit, of: region, buffer, by: .backgroundFill), readAhead(buffer) else { return false }
            unit = unit.upperBound..<unit.upperBound + region.unitPages
        }
        return true
    }

    /// Claims and installs huge page `unit` of `region` from the source, unless it is claimed
    /// already or holds no data (left to the backing, which reads as zeros once unregistered);
    /// false once the pager has failed.
    func fillHugePage(_ unit: Range<PagerPage>, of region: PagedRegion, _ buffer: PageBuffer, by installer: PageInstaller) -> Bool {
        guard session.holdsData(unit, of: region) else { return true }
        let claimed = session.ledger.withLock { ledger -> Bool in
            guard !ledger.claimed.contains(unit.lowerBound) else { return false }
            _ = ledger.claimed.insert(unit)
            return true
        }
        guard claimed else { return true }
        do {
            try buffer.withMutablePages(unit.count) { (bytes) throws(PageSourceError) in
                try session.source.readPagesInBackground(region: region.index, firstPage: region.sourcePage(unit.lowerBound), into: &bytes)
            }
        } catch {
            session.fail("lazy restore stopped: region \(region.region.name) huge page at pages \(region.sourcePage(unit.lowerBound))..<\(region.sourcePage(unit.upperBound)) cannot be read: \(error)")
            return false
        }
        if session.halted.load(ordering: .acquiring) { return false }
        do {
            _ = try buffer.withPages(unit.count) { (bytes) throws(UserfaultError) in
                try session.installCopies(unit, of: region, from: bytes, by: installer, watching: .noPage)
            }
        } catch {
            session.fail("lazy restore stopped: region \(region.region.name) huge page at page \(region.sourcePage(unit.lowerBound)): \(error)")
            return false
        }
        return true
    }

    /// How many pages from `page` on (before `end`) the source knows are zero.
    private func zeroStretch(from page: PagerPage, before end: PagerPage, of region: PagedRegion) -> UInt64 {
        var next = page
        while next < end, session.source.isZeroPage(region: region.index, page: region.sourcePage(next)) { next += 1 }
        return next - page
    }
}

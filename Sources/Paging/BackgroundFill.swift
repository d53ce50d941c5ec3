import LinuxSystem
import Glibc
import GuestMemory

/// The background fill (one thread, or two sharing the work from a page server): first streams
/// the working set it was given (if any), in the order the guest once touched it; then walks
/// every region in order (`FillWalk`) and installs each page
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
    /// The stretches still to fill, shared with the fill's other threads.
    let walk: FillWalk.Shared
    /// Which of the fill's threads this is: the first records and prefetches; the others start
    /// once it has recorded, or dealt out the working set, on their share of it.
    let index: Int

    /// Pages per batch: 2 MiB.
    static let batchPages: UInt64 = 512
    /// Zero stretches at least this long are skipped; shorter ones ride along with the copy.
    static let shortestZeroStretch: UInt64 = 8

    func run() {
        let buffer = PageBuffer(pageCount: Int(Self.batchPages))
        if index == 0 {
            let ready = prepare(buffer)
            session.walkOpen.signal()
            yieldToTheGuest()
            if ready { fill(buffer) }
        } else {
            session.walkOpen.wait()
            let ready = walk.shares.map { installShare($0, buffer) } ?? true
            yieldToTheGuest()
            if ready { fill(buffer) }
        }
        // The last thread out says the fill is done, unless the pager stopped.
        guard walk.leave(), !session.halted.load(ordering: .acquiring) else { return }
        session.fillDone()
    }

    /// Waits out a working-set recording and streams the working set; false once the pager has stopped.
    private func prepare(_ buffer: PageBuffer) -> Bool {
        if let deadline = session.recordingDeadline {
            guard waitForRecording(until: deadline) else { return false }
        }
        if let workingSet = session.prefetch {
            guard prefetch(workingSet, buffer) else { return false }
        }
        return true
    }

    /// Installs stretches from the shared walk until it is done or the pager stops. For a source
    /// that asks for reads ahead, each read names this thread's next stretch, already claimed,
    /// which is on the way while this one is checked and installed.
    private func fill(_ buffer: PageBuffer) {
        let namesNext = session.source.asksForReadsAhead
        var stretch = walk.next()
        while let current = stretch {
            let next = namesNext ? walk.next() : nil
            guard install(current, before: next, buffer) else { return }
            stretch = namesNext ? next : walk.next()
        }
    }

    /// The working set is what the guest touches first, so it comes at the guest's own priority;
    /// the walk over the rest then leaves the CPU to faults and vCPUs (nice 10), where the source
    /// allows it.
    private func yieldToTheGuest() {
        if session.source.backgroundReadsYield { NamedThread.lowerCurrentPriority() }
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

    /// Reads the claimed `stretch` (telling the source `next` follows) and installs it; false once the pager has failed.
    private func install(_ stretch: FillWalk.Stretch, before next: FillWalk.Stretch?, _ buffer: PageBuffer, by installer: PageInstaller = .backgroundFill) -> Bool {
        let region = stretch.region, pages = stretch.pages
        do {
            try buffer.withMutablePages(pages.count) { (bytes) throws(PageSourceError) in
                try session.source.readPagesInBackground(
                    region: region.index, firstPage: region.sourcePage(pages.lowerBound), into: &bytes, thenExpecting: next?.sourceRun)
            }
        } catch {
            session.fail("lazy restore stopped: region \(region.region.name) pages \(region.sourcePage(pages.lowerBound))..<\(region.sourcePage(pages.upperBound)) cannot be read: \(error)")
            return false
        }
        // After a failure or stop nothing more is installed, not even a batch already read.
        if session.halted.load(ordering: .acquiring) { return false }
        do {
            _ = try buffer.withPages(pages.count) { (bytes) throws(UserfaultError) in
                try session.installCopies(pages, of: region, from: bytes, by: installer, watching: .noPage)
            }
        } catch {
            session.fail("lazy restore stopped: region \(region.region.name) page \(region.sourcePage(pages.lowerBound)): \(error)")
            return false
        }
        return true
    }

    /// Claims and installs huge page `unit` of `region` from the source, unless it is claimed
    /// already or holds no data (left to the backing, which reads as zeros once unregistered);
    /// false once the pager has failed.
    func fillHugePage(_ unit: Range<PagerPage>, of region: PagedRegion, _ buffer: PageBuffer, by installer: PageInstaller) -> Bool {
        !session.claimForFill(unit, of: region) || install(FillWalk.Stretch(region: region, pages: unit), before: nil, buffer, by: installer)
    }
}

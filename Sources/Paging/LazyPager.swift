import GuestMemory
import LinuxSystem
import Synchronization

/// Lazy restore: guest memory starts empty and is filled from a page source, on demand by a
/// fault-handler thread (userfaultfd MISSING faults, from vCPUs, KVM or any other thread) and
/// in bulk by a background fill thread, until every page is present.
///
/// Between `init` and `start` the regions are registered but nobody serves them: touching
/// them then blocks. Pages must not be discarded (MADV_REMOVE, hole punching) while the pager
/// runs except after `prepareDiscard` (the pager is the `MemoryReclaimer`'s gate): a page it has
/// installed is never installed again, and a discarded one only ever as zeros. A page that cannot be served (read error, CRC mismatch) stops the pager
/// and leaves the faulting thread parked forever instead of showing it wrong memory; the
/// caller ends the VM.
package final class LazyPager: Sendable {

    private let session: PagingSession
    private let clusterPages: UInt64
    private let started = Atomic<Bool>(false)
    private let filling = Atomic<Bool>(false)
    private let threads = Locked<[NamedThread]>([])

    /// Registers every region (region i of `regions` is region i of `source`; sizes must match)
    /// with one userfaultfd. The regions must be fresh (all zero, as `SnapshotMemoryLoader.empty`
    /// makes them): zero pages are left to them rather than installed. `faultClusterPages` (1 to 512) is how many aligned neighbouring
    /// pages a fault may bring in with it. `prefetch` is a working set the fill claims and
    /// streams first; `recorder` records one instead (the two do not mix).
    package init(
        regions: [GuestRegion], source: any PageSource, faultClusterPages: Int = 16, prefetch: WorkingSet? = nil,
        recorder: WorkingSetRecorder? = nil
    ) throws(PagingError) {
        precondition((1...512).contains(faultClusterPages), "fault cluster of \(faultClusterPages) pages; expected 1 to 512")
        precondition(prefetch == nil || recorder == nil, "a restore either prefetches a working set or records one")
        guard source.regionCount == regions.count else {
            throw .regionCount(machine: regions.count, source: source.regionCount)
        }
        var paged: [PagedRegion] = []
        var nextPage = PagerPage(0)
        for (index, region) in regions.enumerated() {
            // hugetlbfs: userfaultfd installs whole huge pages, which the fill and the fault handler
            // stage in their 2 MiB buffers; larger huge pages (1 GiB) would need 1 GiB buffers.
            let unitPages = region.backingPageBytes / PageSize.bytes64
            guard unitPages <= BackgroundFill.batchPages else {
                throw .unsupportedBacking(
                    name: region.name, kind: region.backing.kindName,
                    reason: "its huge pages are \(region.backingPageBytes >> 20) MiB; lazy restore installs huge pages of at most 2 MiB")
            }
            let sourcePages = source.pageCount(region: index)
            guard region.sizeInBytes == sourcePages * PageSize.bytes64 else {
                throw .regionSize(name: region.name, index: index, sizeInBytes: region.sizeInBytes, sourcePages: sourcePages)
            }
            paged.append(PagedRegion(
                index: index, region: region, hostStart: region.hostAddress(at: RegionOffset(0)),
                pageCount: sourcePages, firstPage: nextPage, unitPages: unitPages))
            nextPage += sourcePages
        }
        if let prefetch {
            for page in prefetch.pages where page.region >= paged.count || page.page.rawValue >= paged[page.region].pageCount {
                throw .workingSet("the working set names page \(page.page) of region \(page.region), which this memory does not have")
            }
        }
        // Shared (memfd, tmpfs) mappings need MISSING_SHMEM, hugetlbfs MISSING_HUGETLBFS; private anonymous memory nothing.
        var features: UserfaultFeatures = []
        if paged.contains(where: { $0.region.fileDescriptor != nil && !$0.installsHugePages }) { features.insert(.missingShmem) }
        if paged.contains(where: \.installsHugePages) { features.insert(.missingHugetlbfs) }
        let userfault: UserfaultDescriptor
        do { userfault = try UserfaultDescriptor(features: features) } catch { throw .userfault(error) }
        for region in paged {
            let operations: UserfaultRangeOperations
            do { operations = try userfault.registerMissing(start: region.hostStart, length: region.sizeInBytes) } catch {
                throw .register(name: region.region.name, kind: region.region.backing.kindName, reason: error.description)
            }
            // hugetlbfs has no UFFDIO_ZEROPAGE: its zeros are copied in.
            let needed: UserfaultRangeOperations = region.installsHugePages ? [.copy, .wake] : [.copy, .zeroPage, .wake]
            guard operations.isSuperset(of: needed) else {
                throw .register(
                    name: region.region.name, kind: region.region.backing.kindName,
                    reason: region.installsHugePages ? "the range does not allow UFFDIO_COPY and UFFDIO_WAKE"
                        : "the range does not allow UFFDIO_COPY, UFFDIO_ZEROPAGE and UFFDIO_WAKE")
            }
        }
        session = try PagingSession(regions: paged, source: source, userfault: userfault, prefetch: prefetch, recorder: recorder)
        clusterPages = UInt64(faultClusterPages)
    }

    deinit { stop() }

    /// Starts the fault-handler thread and the background fill thread. `onFailure` is called
    /// once, on a paging thread, with a one-line message if a page cannot be served; the pager
    /// has then stopped serving and keeps the userfaultfd open (never unregistered, never
    /// zero-filled), so the guest stays stopped at that fault. The caller ends the VM.
    package func start(onFailure: @escaping @Sendable (String) -> Void) throws(PagingError) {
        try startServingFaults(onFailure: onFailure)
        try startFill()
    }

    /// Starts the fault-handler thread alone (`start`'s first half; `startFill` is the second).
    /// Writes the host must make before anything runs (a restored VM's new generation ID) go in
    /// between: their fault is then served on its own, where once the fill runs it may wait for
    /// the whole chunk of the fill that holds the page, behind a thread that runs at low priority.
    package func startServingFaults(onFailure: @escaping @Sendable (String) -> Void) throws(PagingError) {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .alreadyStarted
        }
        session.begin(onFailure: onFailure)
        let session = session
        let clusterPages = clusterPages
        do {
            let handler = try NamedThread.spawn(name: "engram-uffd", role: .pageFault) {
                var handler = FaultHandler(session: session, clusterPages: clusterPages)
                handler.run()
            }
            threads.withLock { $0.append(handler) }
        } catch {
            stop()
            throw .thread(error)
        }
    }

    /// Starts the background fill thread, once the fault handler runs.
    package func startFill() throws(PagingError) {
        precondition(started.load(ordering: .acquiring), "the fill starts after the fault handler")
        guard filling.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .alreadyStarted
        }
        let session = session
        let count = max(1, session.source.backgroundReadThreads)
        let walk = FillWalk.Shared(session: session, threads: count)
        do {
            for index in 0..<count {
                let fill = try NamedThread.spawn(name: index == 0 ? "engram-fill" : "engram-fill\(index + 1)", role: .pageFault) {
                    BackgroundFill(session: session, walk: walk, index: index).run()
                }
                threads.withLock { $0.append(fill) }
            }
        } catch {
            stop()
            throw .thread(error)
        }
    }

    /// A consistent copy of the counters (latency percentiles may lag them by a fault or two).
    package func statistics() -> PagingStatistics {
        let latency = session.latency.summary()
        return session.ledger.withLock { $0.statistics(faultLatency: latency) }
    }

    /// Blocks until every page of every region is present (the fill is done and the
    /// userfaultfd closed) or the pager failed or was stopped; true if complete. After a
    /// failure it returns once `onFailure` has returned.
    package func waitUntilFilled() -> Bool {
        if started.load(ordering: .acquiring) { session.finished.wait() }
        return session.ledger.withLock { $0.complete }
    }

    /// Stops both threads and waits for them (VM exit); safe to call twice, and from `onFailure`.
    package func stop() {
        session.halt()
        let running = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in running {
            if thread.isCurrent { thread.detach() } else { thread.join() }
        }
        session.finished.signal()
    }
}

extension LazyPager: DiscardGate {
    package func prepareDiscard(of region: GuestRegion, range: Range<UInt64>) {
        session.prepareDiscard(of: region, range: range)
    }
}

import LinuxSystem
import Foundation
import GuestMemory
import Paging
import Testing
import TestSupport

/// Working sets in a lazy restore: prefetched first and in order, recorded from the faults of
/// the first moments, and never a page fetched twice whoever races for it.
@Suite struct PrefetchTests {
    /// LazyPagerTests' layout: "ram" 2048 pages, "high" 300 pages, zero pages scattered and in a stretch.
    static func zero(_ region: Int, _ page: UInt64) -> Bool {
        region == 0 ? (page % 5 == 3 || (1000..<1100).contains(page)) : page % 2 == 0
    }

    static func regions() throws -> [GuestRegion] {
        [
            try GuestRegion(name: "ram", sizeInBytes: 2048 * 4096, backing: .memfd),
            try GuestRegion(name: "high", sizeInBytes: 300 * 4096, backing: .memfd),
        ]
    }

    static func set(_ pages: [(Int, UInt64)]) -> WorkingSet {
        WorkingSet(fingerprint: 42, pages: pages.map { PageReference(region: $0.0, page: PageIndex($0.1)) }, recordedMilliseconds: 1)
    }

    @Test func prefetchInstallsTheSetInItsOrder() throws {
        let regions = try Self.regions()
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero)
        // Neighbours (one copy), zero pages between data pages, both regions, out of address order.
        let set = Self.set([(0, 500), (0, 501), (0, 502), (0, 3), (1, 7), (0, 1050), (0, 1999), (1, 4), (1, 299)])
        let pager = try LazyPager(regions: regions, source: source, prefetch: set)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try source.inner.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.inner.mismatches(in: regions[1], region: 1).isEmpty)

        let statistics = pager.statistics()
        // Nothing faulted, so the prefetch installed the whole set, zero pages included.
        #expect(statistics.prefetchPages == 9 && statistics.workingSetPages == 9)
        #expect(statistics.demandPages == 0)
        #expect(statistics.demandPages + statistics.backgroundPages + statistics.prefetchPages + statistics.untouchedPages == 2348)
        // One stream, of the data pages only, in the set's order.
        #expect(source.streamedLists == [set.pages.filter { !Self.zero($0.region, $0.page.rawValue) }])
        #expect(source.misread(zero: Self.zero).isEmpty)
    }

    /// The working set is what the guest touches first: it comes at the guest's own priority, and
    /// only the walk over the rest of memory yields the CPU (nice 10).
    @Test func thePrefetchRunsAtTheGuestsPriorityAndTheWalkYields() throws {
        let regions = try Self.regions()
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source, prefetch: Self.set([(0, 500), (0, 3), (1, 7)]))
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        let niceness = source.niceness.withLock { $0 }
        #expect(niceness.stream == [CountingPageSource.currentNiceness])
        #expect(!niceness.walk.isEmpty && niceness.walk.allSatisfy { $0 == 10 }, "\(niceness.walk)")
    }

    @Test func faultOnAPageOfTheSetWaitsForThePrefetch() throws {
        let regions = try Self.regions()
        // The stream is held at its start, after the prefetch has claimed the set.
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero, gatedStream: true)
        let set = Self.set([(0, 600), (0, 601), (1, 9)])
        let pager = try LazyPager(regions: regions, source: source, faultClusterPages: 1, prefetch: set)
        // If the test leaves early, the gate must open before the pager goes away: stopping
        // joins the fill thread, which would otherwise wait at the gate forever.
        defer { source.openStreamGate() }
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        #expect(source.streamStarted.wait(timeout: .now() + 60) == .success)

        let waiting = PageToucher(regions[0], pages: [601])
        let deadline = Date().addingTimeInterval(60)  // a hang guard
        while pager.statistics().fillWaitFaults == 0, Date() < deadline { usleep(1000) }
        #expect(pager.statistics().fillWaitFaults == 1)
        // Claimed by the prefetch: the handler leaves it alone, the thread stays parked...
        #expect(!waiting.finished)
        // ...while a page outside the set is served at once.
        #expect(try #require(PageToucher(regions[0], pages: [900]).pages()) == [source.inner.expected(region: 0, page: 900)])

        source.openStreamGate()
        #expect(try #require(waiting.pages()) == [source.inner.expected(region: 0, page: 601)])
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        let statistics = pager.statistics()
        #expect(statistics.prefetchPages == 3 && statistics.demandPages == 1 && statistics.demandFaults == 1)
        #expect(source.readCounts(region: 0)[601] == 1)
        #expect(source.misread(zero: Self.zero).isEmpty)
    }

    @Test func setWithPagesOutsideTheMemoryIsRefused() throws {
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero)
        for page in [(1, UInt64(300)), (2, UInt64(0))] {
            #expect(throws: PagingError.self) { _ = try LazyPager(regions: try Self.regions(), source: source, prefetch: Self.set([(0, 1), page])) }
        }
    }

    @Test func recordingCapturesTouchesInOrderBeforeTheFillStarts() throws {
        let regions = try Self.regions()
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero)
        let pagerBox = Shared<LazyPager?>(nil)
        let stored = Shared<(set: WorkingSet, pagesRead: Int, statistics: PagingStatistics?)?>(nil)
        // Long enough that the touches below land inside the window even on a loaded machine;
        // the test asserts nothing about time.
        let recorder = WorkingSetRecorder(milliseconds: 1500, fingerprint: 0xFEED) { set in
            stored.value = (set, source.pagesRead, pagerBox.value?.statistics())
        }
        // One page per fault, so the set is exactly the pages touched.
        let pager = try LazyPager(regions: regions, source: source, faultClusterPages: 1, recorder: recorder)
        pagerBox.value = pager
        defer { pagerBox.value = nil }  // the recorder's closure would keep the pager alive
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        // Data and zero pages, one toucher after the other so the order is known.
        let ram: [UInt64] = [500, 7, 1050, 1999]
        let high: [UInt64] = [11, 4]
        #expect(try #require(PageToucher(regions[0], pages: ram).pages()) == ram.map { source.inner.expected(region: 0, page: $0) })
        #expect(try #require(PageToucher(regions[1], pages: high).pages()) == high.map { source.inner.expected(region: 1, page: $0) })

        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        let recorded = try #require(stored.value)
        #expect(recorded.set.pages == ram.map { PageReference(region: 0, page: PageIndex($0)) } + high.map { PageReference(region: 1, page: PageIndex($0)) })
        #expect(recorded.set.fingerprint == 0xFEED && recorded.set.recordedMilliseconds == 1500)
        // When the set was handed over the fill had read nothing: only the four data pages touched were read.
        #expect(recorded.pagesRead == 4)
        #expect(recorded.statistics?.backgroundPages == 0 && recorded.statistics?.demandPages == 6)
        let statistics = pager.statistics()
        #expect(statistics.complete && statistics.workingSetPages == 6 && statistics.prefetchPages == 0)
        #expect(try source.inner.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.inner.mismatches(in: regions[1], region: 1).isEmpty)
    }

    /// With one fill thread, and with two that claim a batch ahead each (as from a page server).
    @Test(arguments: [1, 2])
    func noPageIsReadTwiceWhileFaultsRaceTheFill(fillThreads: Int) throws {
        let regions = try Self.regions()
        // No zero pages: every page is read and copied by exactly one thread, none left to the backing.
        let source = CountingPageSource(pageCounts: [2048, 300], zero: { _, _ in false }, pauseMicrosecondsPerPage: 20, fillThreads: fillThreads)
        let pager = try LazyPager(regions: regions, source: source)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        let touchers = Self.touchers(regions, seed: 1)
        for (toucher, region, pages) in touchers {
            #expect(try #require(toucher.pages()) == pages.map { source.inner.expected(region: region, page: $0) })
        }
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try source.inner.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.inner.mismatches(in: regions[1], region: 1).isEmpty)

        let statistics = pager.statistics()
        #expect(source.readCounts(region: 0).allSatisfy { $0 == 1 } && source.readCounts(region: 1).allSatisfy { $0 == 1 })
        #expect(UInt64(source.pagesRead) == statistics.demandPages + statistics.backgroundPages)
        #expect(statistics.demandPages + statistics.backgroundPages == 2348 && statistics.untouchedPages == 0)
    }

    @Test(arguments: [1, 2])
    func noPageIsReadTwiceWhileFaultsRaceThePrefetchAndTheFill(fillThreads: Int) throws {
        let regions = try Self.regions()
        let source = CountingPageSource(pageCounts: [2048, 300], zero: Self.zero, pauseMicrosecondsPerPage: 20, fillThreads: fillThreads)
        // 400 pages of both regions, data and zero, in a scrambled order.
        var generator = SeededGenerator(seed: 7)
        let candidates = (0..<2048).map { (0, UInt64($0)) } + (0..<300).map { (1, UInt64($0)) }
        let set = Self.set(Array(candidates.shuffled(using: &generator).prefix(400)))
        let pager = try LazyPager(regions: regions, source: source, prefetch: set)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        for (toucher, region, pages) in Self.touchers(regions, seed: 2) {
            #expect(try #require(toucher.pages()) == pages.map { source.inner.expected(region: region, page: $0) })
        }
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try source.inner.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.inner.mismatches(in: regions[1], region: 1).isEmpty)

        let statistics = pager.statistics()
        // Every data page read exactly once, a zero page at most once (inside a batch's short gap).
        #expect(source.misread(zero: Self.zero).isEmpty)
        // Each page of the set went in by the prefetch, or by the handler if a fault claimed it first.
        #expect(statistics.workingSetPages == 400)
        #expect(statistics.prefetchPages <= 400 && statistics.prefetchPages + statistics.demandPages >= 400)
        #expect(statistics.demandPages + statistics.backgroundPages + statistics.prefetchPages + statistics.untouchedPages == 2348)
        // Pages read are pages installed, less those installed with UFFDIO_ZEROPAGE.
        #expect(UInt64(source.pagesRead) <= statistics.demandPages + statistics.backgroundPages + statistics.prefetchPages)
        // Each fill thread streamed a list of its own: data pages of the set, none in two lists, each in the set's order.
        let lists = source.streamedLists
        #expect(lists.count == fillThreads, "\(lists.map(\.count))")
        let position = Dictionary(uniqueKeysWithValues: set.pages.enumerated().map { ($1, $0) })
        #expect(Set(lists.joined()).count == lists.joined().count)
        for list in lists {
            #expect(list.allSatisfy { !Self.zero($0.region, $0.page.rawValue) && position[$0] != nil })
            #expect(zip(list, list.dropFirst()).allSatisfy { position[$0]! < position[$1]! })
        }
    }

    /// Four threads touching a scrambled third of each region, started at once.
    static func touchers(_ regions: [GuestRegion], seed: UInt64) -> [(PageToucher, Int, [UInt64])] {
        var generator = SeededGenerator(seed: seed)
        var result: [(PageToucher, Int, [UInt64])] = []
        for (region, count) in [(0, UInt64(2048)), (0, 2048), (1, 300), (1, 300)] {
            let pages = Array((0..<count).shuffled(using: &generator).prefix(Int(count / 3)))
            result.append((PageToucher(regions[region], pages: pages), region, pages))
        }
        return result
    }
}

/// TestPageSource's pages, counting how often each page is read and recording each list
/// asked for as a stream (served a page at a time, through the same counted reads). With
/// `gatedStream`, `streamPages` signals `streamStarted` and waits for `openStreamGate`.
final class CountingPageSource: PageSource {
    let inner: TestPageSource
    let streamStarted = DispatchSemaphore(value: 0)
    private let gate: DispatchSemaphore?
    private let pause: UInt32
    private let reads: Locked<[[Int]]>
    private let lists = Locked<[[PageReference]]>([])

    /// With `fillThreads` above one, the fill also names its next reads (as from a page server).
    let backgroundReadThreads: Int
    var asksForReadsAhead: Bool { backgroundReadThreads > 1 }

    init(
        pageCounts: [UInt64], zero: @escaping @Sendable (Int, UInt64) -> Bool, gatedStream: Bool = false, pauseMicrosecondsPerPage: UInt32 = 0,
        fillThreads: Int = 1
    ) {
        inner = TestPageSource(pageCounts: pageCounts, zero: zero)
        backgroundReadThreads = fillThreads
        gate = gatedStream ? DispatchSemaphore(value: 0) : nil
        pause = pauseMicrosecondsPerPage
        reads = Locked(pageCounts.map { [Int](repeating: 0, count: Int($0)) })
    }

    var regionCount: Int { inner.regionCount }

    func pageCount(region: Int) -> UInt64 { inner.pageCount(region: region) }

    func isZeroPage(region: Int, page: PageIndex) -> Bool { inner.isZeroPage(region: region, page: page) }

    func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        try inner.readPages(region: region, firstPage: firstPage, into: &buffer)
        let count = buffer.byteCount / 4096
        reads.withLock { reads in
            for index in 0..<count { reads[region][Int(firstPage.rawValue) + index] += 1 }
        }
        // Slows reads down so the threads overlap more; correctness does not depend on it.
        if pause > 0 { usleep(pause * UInt32(count)) }
    }

    /// The background reads of the fill's walk, recording the reading thread's nice value.
    func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting next: PageRun?) throws(PageSourceError) {
        let nice = Self.currentNiceness
        niceness.withLock { $0.walk.append(nice) }
        try readPages(region: region, firstPage: firstPage, into: &buffer)
    }

    /// The calling thread's nice value.
    static var currentNiceness: Int32 { getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(NamedThread.currentThreadID)) }

    /// The nice values of the threads that opened a prefetch stream and that read for the walk.
    let niceness = Locked<(stream: [Int32], walk: [Int32])>(([], []))

    func streamPages(_ pages: [PageReference]) throws(PageSourceError) -> any PageStream {
        let nice = Self.currentNiceness
        niceness.withLock { $0.stream.append(nice) }
        lists.withLock { $0.append(pages) }
        streamStarted.signal()
        if let gate {
            gate.wait()
            gate.signal()
        }
        return CountedStream(source: self, pages: pages)
    }

    func openStreamGate() { gate?.signal() }

    var streamedLists: [[PageReference]] { lists.withLock { $0 } }

    func readCounts(region: Int) -> [Int] { reads.withLock { $0[region] } }

    var pagesRead: Int { reads.withLock { $0.joined().reduce(0, +) } }

    /// Pages read the wrong number of times: a data page other than once, a zero page more than once.
    func misread(zero: (Int, UInt64) -> Bool) -> [PageReference] {
        reads.withLock { reads in
            var wrong: [PageReference] = []
            for (region, counts) in reads.enumerated() {
                for (page, count) in counts.enumerated() where count > 1 || (count == 0 && !zero(region, UInt64(page))) {
                    wrong.append(PageReference(region: region, page: PageIndex(UInt64(page))))
                }
            }
            return wrong
        }
    }
}

/// A stream served page by page through the counting source's reads.
struct CountedStream: PageStream {
    let source: CountingPageSource
    let pages: [PageReference]
    var next = 0

    mutating func receive(into buffer: inout MutableRawSpan) throws(PageSourceError) {
        for offset in stride(from: 0, to: buffer.byteCount, by: 4096) {
            let page = pages[next]
            try buffer.withBytes(in: offset..<offset + 4096) { (one) throws(PageSourceError) in
                try source.readPages(region: page.region, firstPage: page.page, into: &one)
            }
            next += 1
        }
    }
}

/// SplitMix64, so a scrambled order is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

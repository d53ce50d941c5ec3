import GuestMemory
import Paging
import Testing

/// Lazy restore with a test page source on real memfd regions and a real userfaultfd.
@Suite struct LazyPagerTests {
    /// "ram" (2048 pages: single zero pages every 5th page, and a zero stretch 1000..<1100)
    /// and "high" (300 pages, every even page zero).
    static func zero(_ region: Int, _ page: UInt64) -> Bool {
        region == 0 ? (page % 5 == 3 || (1000..<1100).contains(page)) : page % 2 == 0
    }

    static func regions(backing: RegionBacking = .memfd) throws -> [GuestRegion] {
        [
            try GuestRegion(name: "ram", sizeInBytes: 2048 * 4096, backing: backing),
            try GuestRegion(name: "high", sizeInBytes: 300 * 4096, backing: backing),
        ]
    }

    @Test func faultsAreServedInClustersAndTheFillInstallsTheRest() throws {
        let regions = try Self.regions()
        // The fill's first read includes page 0 of "ram": gated, it waits while faults are served.
        let source = TestPageSource(pageCounts: [2048, 300], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        defer { source.openGate() }
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        // One thread after the other, so the handler sees the faults in this order. The gated fill
        // has claimed its first batch (ram pages below 512): faults there would wait for it.
        let ramPages = try #require(PageToucher(regions[0], pages: [600, 601, 700, 1050, 1500]).pages())
        let highPages = try #require(PageToucher(regions[1], pages: [7, 40]).pages())
        #expect(ramPages == [600, 601, 700, 1050, 1500].map { source.expected(region: 0, page: $0) })
        #expect(highPages == [7, 40].map { source.expected(region: 1, page: $0) })

        source.openGate()
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try source.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.mismatches(in: regions[1], region: 1).isEmpty)

        let statistics = pager.statistics()
        #expect(statistics.complete && statistics.failure == nil)
        #expect(statistics.totalPages == 2348 && statistics.presentPages == 2348)
        // Seven faults: 1050 (in the zero stretch) and high 40 (between data pages) are zero.
        #expect(statistics.demandFaults == 7 && statistics.demandZeroFaults == 2)
        #expect(statistics.alreadyPresentFaults == 0)
        // Isolated data faults bring one page; 601, next to 600, brings the rest of its aligned
        // cluster (601..<608); a zero fault brings its zero neighbours in the cluster (all 16
        // for 1050, none for high 40, whose neighbours hold data).
        #expect(statistics.demandPages == 1 + 7 + 1 + 16 + 1 + 1 + 1)
        // The fill installs every data page the handler did not; long zero stretches stay holes.
        #expect(statistics.demandPages + statistics.backgroundPages + statistics.untouchedPages == 2348)
        #expect(statistics.untouchedPages > 0)
        #expect(statistics.fillDurationMilliseconds != nil)
        #expect(statistics.faultLatency.count == 7)
        #expect(statistics.faultLatency.buckets.reduce(0) { $0 + $1.count } == 7)
        #expect(statistics.faultLatency.p50Microseconds > 0)
        #expect(statistics.faultLatency.p99Microseconds <= statistics.faultLatency.maxMicroseconds * 1.02)
    }

    /// Each fill read names the one after it, which is the next its thread makes, so a remote
    /// source may ask for it ahead; the reads of both fill threads cover each data page once.
    @Test func eachFillReadNamesTheNextOne() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], asksForReadsAhead: true, backgroundReadThreads: 2, zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        #expect(try source.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.mismatches(in: regions[1], region: 1).isEmpty)
        let threads = source.backgroundCalls
        #expect((1...2).contains(threads.count))
        for calls in threads {
            for (call, following) in zip(calls, calls.dropFirst()) { #expect(call.next == following.run) }
            #expect(calls.last?.next == nil)
        }
        var covered: [Set<UInt64>] = [[], []]
        for call in threads.joined() {
            for page in call.run.firstPage.rawValue..<call.run.firstPage.rawValue + UInt64(call.run.count) {
                #expect(covered[call.run.region].insert(page).inserted, "region \(call.run.region) page \(page) read twice")
            }
        }
        for region in 0..<2 {
            let data = (0..<source.pageCounts[region]).filter { !Self.zero(region, $0) }
            #expect(data.allSatisfy { covered[region].contains($0) }, "region \(region)")
        }
    }

    @Test func clusterOfOneServesOnlyTheFaultingPage() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source, faultClusterPages: 1)
        defer { source.openGate() }
        try pager.start(onFailure: FailureRecorder().handler)
        let touched = try #require(PageToucher(regions[0], pages: [600, 601]).pages())
        #expect(touched == [source.expected(region: 0, page: 600), source.expected(region: 0, page: 601)])
        source.openGate()
        #expect(pager.waitUntilFilled())
        let statistics = pager.statistics()
        #expect(statistics.demandFaults == 2 && statistics.demandPages == 2)
        #expect(statistics.backgroundPages + statistics.untouchedPages == 2346)
    }

    @Test func writesLandOnServedPages() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        defer { source.openGate() }
        try pager.start(onFailure: FailureRecorder().handler)
        // A store to a missing page faults too; the page arrives first, then the store lands.
        let touched = try #require(PageToucher(regions[0], pages: [600, 1010], write: 0xEE).pages())
        for (page, bytes) in zip([UInt64(600), 1010], touched) {
            var expected = source.expected(region: 0, page: page)
            expected[100] = 0xEE
            #expect(bytes == expected)
        }
        source.openGate()
        #expect(pager.waitUntilFilled())
        // The fill never overwrote the written pages.
        #expect(try regions[0].read(count: 1, at: RegionOffset(600 * 4096 + 100)) == [0xEE])
        #expect(try regions[0].read(count: 1, at: RegionOffset(1010 * 4096 + 100)) == [0xEE])
    }

    @Test func manyThreadsRaceTheFill() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        try pager.start(onFailure: FailureRecorder().handler)
        var generator = SystemRandomNumberGenerator()
        let plans: [(Int, [UInt64])] = (0..<6).map { thread in
            let region = thread % 2
            let count = region == 0 ? UInt64(2048) : 300
            return (region, (0..<40).map { _ in UInt64.random(in: 0..<count, using: &generator) })
        }
        let touchers = plans.map { PageToucher(regions[$0.0], pages: $0.1) }
        for (toucher, plan) in zip(touchers, plans) {
            let pages = try #require(toucher.pages())
            #expect(pages == plan.1.map { source.expected(region: plan.0, page: $0) })
        }
        #expect(pager.waitUntilFilled())
        #expect(try source.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.mismatches(in: regions[1], region: 1).isEmpty)
        let statistics = pager.statistics()
        #expect(statistics.presentPages == statistics.totalPages)
        #expect(statistics.demandPages + statistics.backgroundPages + statistics.untouchedPages == statistics.totalPages)
        #expect(statistics.demandZeroFaults <= statistics.demandFaults)
        #expect(statistics.faultLatency.count == statistics.demandFaults + statistics.alreadyPresentFaults)
    }

    @Test func anonymousMemoryIsFilledToo() throws {
        let regions = try Self.regions(backing: .anonymous)
        let source = TestPageSource(pageCounts: [2048, 300], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        defer { source.openGate() }
        try pager.start(onFailure: FailureRecorder().handler)
        let touched = try #require(PageToucher(regions[1], pages: [3, 4]).pages())
        #expect(touched == [source.expected(region: 1, page: 3), source.expected(region: 1, page: 4)])
        source.openGate()
        #expect(pager.waitUntilFilled())
        #expect(try source.mismatches(in: regions[0], region: 0).isEmpty)
        #expect(try source.mismatches(in: regions[1], region: 1).isEmpty)
    }

    @Test func pagesAlreadyInMemoryAreKeptAndCounted() throws {
        let regions = try Self.regions()
        // Written through the mapping before the pager registers it: present, so never faulted or filled.
        try regions[0].write([1, 2, 3], at: RegionOffset(5 * 4096))
        let source = TestPageSource(pageCounts: [2048, 300], zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        try pager.start(onFailure: FailureRecorder().handler)
        #expect(pager.waitUntilFilled())
        let statistics = pager.statistics()
        #expect(statistics.untouchedPages >= 1)
        #expect(statistics.backgroundPages + statistics.demandPages + statistics.untouchedPages == statistics.totalPages)
        #expect(try regions[0].read(count: 3, at: RegionOffset(5 * 4096)) == [1, 2, 3])
    }

    @Test func stopIsSafeTwiceAndBeforeStart() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], gate: (0, 0), zero: Self.zero)
        let idle = try LazyPager(regions: regions, source: source)
        #expect(!idle.waitUntilFilled())
        idle.stop()
        idle.stop()

        let other = try Self.regions()
        let pager = try LazyPager(regions: other, source: source)
        try pager.start(onFailure: FailureRecorder().handler)
        #expect(throws: PagingError.alreadyStarted) { try pager.start(onFailure: { _ in }) }
        source.openGate()
        pager.stop()
        pager.stop()
        // Stopped (or, if the fill won the race, complete): either way the wait returns.
        let complete = pager.waitUntilFilled()
        #expect(pager.statistics().complete == complete)
        #expect(pager.statistics().failure == nil)
    }

    @Test func statisticsEncodeAsJSON() throws {
        let regions = try Self.regions()
        let source = TestPageSource(pageCounts: [2048, 300], zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        try pager.start(onFailure: FailureRecorder().handler)
        #expect(pager.waitUntilFilled())
        let json = String(decoding: try JSONEncoderForTests.encode(pager.statistics()), as: UTF8.self)
        #expect(json.contains("\"totalPages\":2348") && json.contains("\"faultLatency\""))
    }
}

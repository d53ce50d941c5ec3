import Foundation
import GuestMemory
import Paging
import Synchronization
import Testing

/// Pages the guest gives back (balloon) while a lazy restore fills: never refilled from the
/// snapshot, served as zeros when touched again, and a discard waits out an install in flight.
@Suite struct LazyPagerDiscardTests {
    static let zero: @Sendable (Int, UInt64) -> Bool = { _, _ in false }

    @Test func discardedPagesComeBackAsZerosAndTheFillLeavesThem() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 2048 * 4096, backing: .memfd)
        let source = TestPageSource(pageCounts: [2048], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: [region], source: source, faultClusterPages: 1)
        defer { source.openGate() }
        try pager.start(onFailure: FailureRecorder().handler)
        // Page 600 is served from the snapshot, then given back with its neighbours.
        #expect(try #require(PageToucher(region, pages: [600]).pages()) == [source.expected(region: 0, page: 600)])
        let range: Range<UInt64> = 600 * 4096..<610 * 4096
        pager.prepareDiscard(of: region, range: range)
        try region.discard(range)
        let touched = try #require(PageToucher(region, pages: [600, 605], write: 0x11).pages())
        var expected = [UInt8](repeating: 0, count: 4096)
        expected[100] = 0x11
        #expect(touched == [expected, expected], "zeros plus the guest's own write, never the snapshot's page")
        source.openGate()
        #expect(pager.waitUntilFilled())
        #expect(try region.read(count: 4096, at: RegionOffset(607 * 4096)) == [UInt8](repeating: 0, count: 4096), "the fill left it alone")
        #expect(try region.read(count: 1, at: RegionOffset(605 * 4096 + 100)) == [0x11])
        #expect(try region.read(count: 4096, at: RegionOffset(611 * 4096)) == source.expected(region: 0, page: 611))
    }

    @Test func aDiscardWaitsForAnInstallInFlight() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 2048 * 4096, backing: .memfd)
        // The fill claims its first batch (pages 0..<512) and blocks reading it.
        let source = TestPageSource(pageCounts: [2048], gate: (0, 0), zero: Self.zero)
        let pager = try LazyPager(regions: [region], source: source)
        defer { source.openGate() }
        try pager.start(onFailure: FailureRecorder().handler)
        while source.readCount == 0 { usleep(1000) }
        let returned = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            pager.prepareDiscard(of: region, range: 10 * 4096..<11 * 4096)
            returned.store(true, ordering: .releasing)
            done.signal()
        }
        usleep(50_000)
        let early = returned.load(ordering: .acquiring)
        #expect(!early, "page 10 is being installed: the discard waits")
        source.openGate()
        #expect(done.wait(timeout: .now() + 30) == .success)
        try region.discard(10 * 4096..<11 * 4096)
        #expect(pager.waitUntilFilled())
        #expect(try region.read(count: 4096, at: RegionOffset(10 * 4096)) == [UInt8](repeating: 0, count: 4096))
        #expect(try region.read(count: 4096, at: RegionOffset(11 * 4096)) == source.expected(region: 0, page: 11))
    }

    @Test func afterTheRestoreADiscardIsJustAHole() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 64 * 4096, backing: .memfd)
        let source = TestPageSource(pageCounts: [64], zero: Self.zero)
        let pager = try LazyPager(regions: [region], source: source)
        try pager.start(onFailure: FailureRecorder().handler)
        #expect(pager.waitUntilFilled())
        pager.prepareDiscard(of: region, range: 0..<4096)
        try region.discard(0..<4096)
        #expect(try region.read(count: 8, at: RegionOffset(0)) == [UInt8](repeating: 0, count: 8))
    }
}

import Foundation
import GuestMemory
import Paging
import Testing
import TestSupport

/// Lazy restore onto hugetlbfs, with a test page source and a real userfaultfd: userfaultfd
/// installs a whole huge page or nothing, so faults and the fill claim and install whole 2 MiB pages.
@Suite(.enabled(if: HugePageMount.available, "needs root and a kernel that reserves huge pages"), .serialized)
struct LazyPagerHugePageTests {
    let directory = TemporaryDirectory()

    /// 8 huge pages (4096 pages): huge pages 1 and 5 all zero, 3 half zero (its odd pages), the rest data.
    static func zero(_ region: Int, _ page: UInt64) -> Bool {
        switch page / 512 {
        case 1, 5: true
        case 3: page % 2 == 1
        default: false
        }
    }

    @Test func faultsAndTheFillInstallWholeHugePages() throws {
        let mount = try HugePageMount(in: directory, pages: 8 + 2)
        defer { mount.remove() }
        let region = try GuestRegion(name: "ram", sizeInBytes: 4096 * 4096, backing: .hugetlbfs(directory: mount.path))
        #expect(region.backingPageBytes == 2 << 20)
        // The fill's first huge page holds page 0: gated, the fill waits while faults are served.
        // It names each read's successor, claiming that huge page early (huge page 2: untouched here).
        let source = TestPageSource(pageCounts: [4096], gate: (0, 0), asksForReadsAhead: true, zero: Self.zero)
        let pager = try LazyPager(regions: [region], source: source)
        defer { source.openGate() }
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        // 1600 brings in all of huge page 3 (its zero pages too), so 1601 and 2000 do not fault;
        // 700 lies in huge page 1, all zero, which goes in as zeros.
        let pages: [UInt64] = [1600, 1601, 700, 2000]
        let touched = try #require(PageToucher(region, pages: pages).pages())
        #expect(touched == pages.map { source.expected(region: 0, page: $0) })

        source.openGate()
        #expect(pager.waitUntilFilled())
        #expect(failures.all.isEmpty)
        // Read once the fill is done: the handler counts a fault after its copy has woken the toucher.
        let statistics = pager.statistics()
        #expect(statistics.demandFaults == 2 && statistics.demandZeroFaults == 1, "\(statistics)")
        #expect(statistics.demandPages == 2 * 512, "\(statistics)")
        #expect(statistics.complete && statistics.presentPages == 4096)
        // The fill installs the five other huge pages holding data; huge page 5 stays a hole.
        #expect(statistics.backgroundPages == 5 * 512 && statistics.untouchedPages == 512, "\(statistics)")
        #expect(try source.mismatches(in: region, region: 0).isEmpty)
        // The fill read whole huge pages, each naming the next it read.
        let calls = try #require(source.backgroundCalls.first)
        #expect(source.backgroundCalls.count == 1)
        #expect(calls.count == 5 && calls.allSatisfy { $0.run.count == 512 && $0.run.firstPage.rawValue % 512 == 0 })
        for (call, following) in zip(calls, calls.dropFirst()) { #expect(call.next == following.run) }
        #expect(calls.last?.next == nil)
    }
}

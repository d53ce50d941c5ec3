import Foundation
import GuestMemory
import Paging
import Testing
import TestSupport

/// A page that cannot be served stops the pager without ever showing wrong memory; setups
/// that cannot work are refused with messages naming the region.
@Suite struct LazyPagerFailureTests {
    static func zero(_ region: Int, _ page: UInt64) -> Bool { page % 4 == 1 }

    @Test func unreadablePageStopsTheFill() throws {
        let regions = [try GuestRegion(name: "ram", sizeInBytes: 1024 * 4096, backing: .memfd)]
        let source = TestPageSource(pageCounts: [1024], failing: (0, 700), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        #expect(!pager.waitUntilFilled())
        // waitUntilFilled returns after onFailure has returned, so the message is there already.
        let messages = failures.all
        #expect(messages.count == 1)
        let message = try #require(messages.first)
        #expect(message.contains("region ram") && message.contains("700") && message.contains("is corrupt"))
        #expect(!message.contains("\n"))
        let statistics = pager.statistics()
        #expect(statistics.failure == message && !statistics.complete)
        #expect(statistics.presentPages < statistics.totalPages)
        pager.stop()
        pager.stop()
        #expect(failures.all.count == 1)
    }

    @Test func threadTouchingAnUnservablePageStaysParked() throws {
        let regions = [try GuestRegion(name: "ram", sizeInBytes: 1024 * 4096, backing: .memfd)]
        // The gate holds the fill back, so the fault handler is the one that meets the bad page.
        // Its first batch (pages below 512) is claimed by the gated fill: the pages touched lie above.
        let source = TestPageSource(pageCounts: [1024], gate: (0, 0), failing: (0, 800), zero: Self.zero)
        let pager = try LazyPager(regions: regions, source: source)
        defer { source.openGate() }
        let failures = FailureRecorder()
        try pager.start(onFailure: failures.handler)

        let served = try #require(PageToucher(regions[0], pages: [600]).pages())
        #expect(served == [source.expected(region: 0, page: 600)])
        // This thread is abandoned: it keeps the region mapped and stays parked until the process ends.
        let parked = PageToucher(regions[0], pages: [800])
        #expect(failures.wait())
        let message = try #require(failures.all.first)
        #expect(message.contains("region ram page 800 cannot be served"))
        #expect(!pager.waitUntilFilled())
        source.openGate()
        pager.stop()
        // Give a wrong implementation (zero fill, close, unregister) the chance to release the thread.
        usleep(200_000)
        #expect(!parked.finished, "a thread touching an unservable page was let through")
        #expect(pager.statistics().failure == message)
    }

    @Test func regionOfTheWrongSizeIsRefused() throws {
        let regions = [
            try GuestRegion(name: "ram", sizeInBytes: 16 * 4096, backing: .memfd),
            try GuestRegion(name: "high", sizeInBytes: 10 * 4096, backing: .memfd),
        ]
        let source = TestPageSource(pageCounts: [16, 12], zero: Self.zero)
        #expect(throws: PagingError.regionSize(name: "high", index: 1, sizeInBytes: 40960, sourcePages: 12)) {
            try LazyPager(regions: regions, source: source)
        }
        let message = PagingError.regionSize(name: "high", index: 1, sizeInBytes: 40960, sourcePages: 12).description
        #expect(message.contains("high") && message.contains("40960") && message.contains("12 pages"))
    }

    @Test func regionOnAnOrdinaryFileIsRefusedByName() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("ram.img")
        try #require(fileSystemType(of: directory.url.path) != "tmpfs", "the temporary directory is tmpfs, where this works")
        let regions = [try GuestRegion(name: "ram", sizeInBytes: 16 * 4096, backing: .sharedFile(path: path, overwrite: false))]
        do {
            _ = try LazyPager(regions: regions, source: TestPageSource(pageCounts: [16], zero: Self.zero))
            Issue.record("a region on an ordinary file was registered")
        } catch {
            guard case .register(let name, let kind, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(name == "ram" && kind == "shared-file")
            #expect(error.description.contains("lazy restore needs memfd, tmpfs or anonymous memory"))
        }
    }

    /// The type of the file system mounted closest above `path`, from /proc/self/mounts.
    private func fileSystemType(of path: String) -> String {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        var best = (point: "", type: "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 2 else { continue }
            let point = String(fields[1])
            if (path == point || path.hasPrefix(point == "/" ? "/" : point + "/")), point.count > best.point.count {
                best = (point, String(fields[2]))
            }
        }
        return best.type
    }
}

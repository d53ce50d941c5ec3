import Foundation
import GuestMemory
import LinuxSystem
import Paging
import SnapshotFormat

/// A page source with known contents, for the protocol's contract without snapshot files:
/// page p of region r is zero where `zero(r, p)`, else 8-byte words derived from (r, p, word).
///
/// A `gate` page blocks every read that includes it until `openGate()`: the fill reads its
/// first batch from page 0 of region 0, so gating that page holds the fill back while the
/// test drives the fault handler. A `failing` page makes every read that includes it throw.
final class TestPageSource: PageSource {
    let pageCounts: [UInt64]
    private let zero: @Sendable (Int, UInt64) -> Bool
    private let gated: (region: Int, page: UInt64)?
    private let failing: (region: Int, page: UInt64)?
    private let gate = DispatchSemaphore(value: 0)
    private let reads = Locked<Int>(0)
    private let backgroundReads = Locked<[(thread: pthread_t, run: PageRun, next: PageRun?)]>([])
    let asksForReadsAhead: Bool
    let backgroundReadThreads: Int

    init(
        pageCounts: [UInt64], gate: (region: Int, page: UInt64)? = nil, failing: (region: Int, page: UInt64)? = nil,
        asksForReadsAhead: Bool = false, backgroundReadThreads: Int = 1, zero: @escaping @Sendable (Int, UInt64) -> Bool
    ) {
        self.asksForReadsAhead = asksForReadsAhead
        self.backgroundReadThreads = backgroundReadThreads
        self.pageCounts = pageCounts
        self.zero = zero
        self.gated = gate
        self.failing = failing
    }

    var regionCount: Int { pageCounts.count }

    func pageCount(region: Int) -> UInt64 { pageCounts[region] }

    func isZeroPage(region: Int, page: PageIndex) -> Bool { zero(region, page.rawValue) }

    func readPages(region: Int, firstPage start: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        let firstPage = start.rawValue
        let count = UInt64(buffer.byteCount / 4096)
        let pages = firstPage..<firstPage + count
        reads.withLock { $0 += 1 }
        if let gated, gated.region == region, pages.contains(gated.page) {
            gate.wait()
            gate.signal()
        }
        if let failing, failing.region == region, pages.contains(failing.page) {
            throw .snapshot(.pageChecksum(path: "test-source", region: "r\(region)", page: PageIndex(failing.page), stored: 1, computed: 2))
        }
        for index in 0..<Int(count) {
            let page = firstPage + UInt64(index)
            for word in 0..<512 {
                buffer.storeBytes(of: Self.word(region: region, page: page, word: word, zero: zero(region, page)),
                                  toByteOffset: index * 4096 + word * 8, as: UInt64.self)
            }
        }
    }

    func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting next: PageRun?) throws(PageSourceError) {
        backgroundReads.withLock { $0.append((pthread_self(), PageRun(region: region, firstPage: firstPage, count: buffer.byteCount / 4096), next)) }
        try readPages(region: region, firstPage: firstPage, into: &buffer)
    }

    /// The background reads so far, each with the read it said would follow, by the thread that made them.
    var backgroundCalls: [[(run: PageRun, next: PageRun?)]] {
        let calls = backgroundReads.withLock { $0 }
        var threads: [pthread_t] = []
        for call in calls where !threads.contains(call.thread) { threads.append(call.thread) }
        return threads.map { thread in calls.filter { $0.thread == thread }.map { ($0.run, $0.next) } }
    }

    /// Lets gated reads through, now and later.
    func openGate() { gate.signal() }

    /// How many readPages calls were made.
    var readCount: Int { reads.withLock { $0 } }

    /// The bytes page `page` of `region` must hold.
    func expected(region: Int, page: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 4096)
        let isZero = zero(region, page)
        bytes.withUnsafeMutableBytes { raw in
            for word in 0..<512 {
                raw.storeBytes(of: Self.word(region: region, page: page, word: word, zero: isZero), toByteOffset: word * 8, as: UInt64.self)
            }
        }
        return bytes
    }

    private static func word(region: Int, page: UInt64, word: Int, zero: Bool) -> UInt64 {
        zero ? 0 : ((UInt64(region + 1) << 56) ^ (page &* 0x9E37_79B9) ^ (UInt64(word) << 32)) | 1
    }

    /// Pages of `region` in `memory` whose bytes differ from `expected`, at most 10.
    func mismatches(in memory: GuestRegion, region: Int) throws -> [UInt64] {
        var wrong: [UInt64] = []
        for page in 0..<pageCounts[region] where wrong.count < 10 {
            let actual = try memory.read(count: 4096, at: RegionOffset(page * 4096))
            if actual != expected(region: region, page: page) { wrong.append(page) }
        }
        return wrong
    }
}

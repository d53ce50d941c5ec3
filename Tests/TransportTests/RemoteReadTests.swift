import Foundation
import GuestMemory
import LinuxSystem
import Paging
import SnapshotFormat
import Synchronization
import Testing
import TestSupport
@testable import Transport

/// A RemotePageSource sees exactly what the local chain behind the server holds.
@Suite struct RemoteReadTests {
    let directory = TemporaryDirectory()

    @Test func manifestDescribesTheChain() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        #expect(source.manifest.fingerprint == chain.fingerprint)
        #expect(source.manifest.regions == chain.regions.map(\.shape))
        #expect(source.manifest.regions.map(\.name) == ["ram", "high"])
        #expect(source.manifest.state == chain.state)
        #expect(source.manifest.workingSetPages == 0)
        #expect(source.regionCount == 2)
        for region in 0..<2 {
            #expect(source.pageCount(region: region) == chain.pageCount(region: region))
            let differing = (0..<chain.pageCount(region: region)).filter {
                source.isZeroPage(region: region, page: PageIndex($0)) != chain.isZeroPage(region: region, page: PageIndex($0))
            }
            #expect(differing.isEmpty, "region \(region)")
        }
    }

    @Test func readPagesReturnsTheChainsBytes() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        // A single page, a zero page, a run across zero gaps, more than one READ may carry
        // (split in chunks of 1024), a whole region, and the last page of each region.
        let ranges: [(region: Int, first: UInt64, count: Int)] = [
            (0, 0, 1), (0, 1, 1), (0, 5, 20), (0, 90, 1500), (0, 0, 2048), (0, 2047, 1), (1, 0, 256), (1, 255, 1), (1, 9, 1),
        ]
        for range in ranges {
            let remote = try source.bytes(region: range.region, first: range.first, count: range.count)
            let local = try chain.bytes(region: range.region, first: range.first, count: range.count)
            #expect(remote == local, "region \(range.region) pages \(range.first) + \(range.count)")
        }
        // The fill's reads go over a connection of their own, served at lower priority: same bytes.
        var background = [UInt8](repeating: 0, count: 1500 * 4096)
        var span = background.mutableSpan
        var raw = span.mutableBytes
        try source.readPagesInBackground(region: 0, firstPage: 90, into: &raw)
        #expect(background == (try chain.bytes(region: 0, first: 90, count: 1500)))

        let statistics = try #require(source.transferStatistics)
        #expect(statistics.pagesReceived == UInt64(ranges.reduce(0) { $0 + $1.count } + 1500))
        #expect(statistics.reconnects == 0)
        // One READ per range, two for each range past 1024 pages (the manifest in init is not counted).
        #expect(statistics.requests == UInt64(ranges.count + 2 + 2))
        #expect(statistics.bytesReceived > statistics.pagesReceived * 4096)
    }

    /// The fill names its next read: that READ goes out with this one's, on the same connection,
    /// and the next call only reads its reply. A read that is not the one named still gets its
    /// own pages (the reply asked for ahead is read and dropped).
    @Test func backgroundReadsAskForTheNextOneAhead() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        let runs = [PageRun(region: 0, firstPage: 0, count: 512), PageRun(region: 0, firstPage: 512, count: 1024), PageRun(region: 1, firstPage: 3, count: 200)]
        let readBytes = 4 + 1 + 16
        var sent: [UInt64] = []
        for (index, run) in runs.enumerated() {
            let before = try #require(source.transferStatistics).bytesSent
            let next = index + 1 < runs.count ? runs[index + 1] : nil
            #expect(try source.backgroundBytes(run, then: next) == chain.bytes(region: run.region, first: run.firstPage.rawValue, count: run.count))
            sent.append(try #require(source.transferStatistics).bytesSent - before)
        }
        // Two READs with the first call, one with each call that had one asked for ahead, none with the last.
        #expect(sent == [UInt64(2 * readBytes), UInt64(readBytes), 0])

        // A read of no pages crosses nothing (the READ asked for ahead stays this thread's next).
        let before = try #require(source.transferStatistics)
        #expect(try source.backgroundBytes(PageRun(region: 0, firstPage: 5, count: 0), then: nil) == [])
        #expect(source.transferStatistics == before)

        // Named one read, asked for another: the pages asked for are the ones that come.
        let named = PageRun(region: 0, firstPage: 1024, count: 64), asked = PageRun(region: 0, firstPage: 1500, count: 8)
        #expect(try source.backgroundBytes(PageRun(region: 1, firstPage: 0, count: 16), then: named) == chain.bytes(region: 1, first: 0, count: 16))
        #expect(try source.backgroundBytes(asked, then: nil) == chain.bytes(region: 0, first: 1500, count: 8))
        #expect(try source.backgroundBytes(named, then: nil) == chain.bytes(region: 0, first: 1024, count: 64))
        let statistics = try #require(source.transferStatistics)
        // The 64 pages dropped crossed the link but are not counted as received.
        let kept: UInt64 = 512 + 1024 + 200 + 16 + 8 + 64, dropped: UInt64 = 64
        #expect(statistics.pagesReceived == kept)
        #expect(statistics.bytesReceived > (kept + dropped) * 4096)
        #expect(statistics.reconnects == 0)
    }

    /// Two fill threads at once, each naming its own next read: each thread's READ asked for
    /// ahead is the one its next call reads, on its own connection.
    @Test func fillThreadsEachKeepTheirOwnReadAhead() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        let wrong = Shared<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            // Thread 0 reads region 0 upwards, thread 1 region 0 downwards then region 1.
            var runs: [PageRun] = []
            for step in 0..<8 {
                let first: UInt64, count: Int, region: Int
                if thread == 0 {
                    (region, first, count) = (0, UInt64(step * 100), 100)
                } else if step < 4 {
                    (region, first, count) = (0, UInt64(2000 - step * 37), 37)
                } else {
                    (region, first, count) = (1, UInt64(step * 20), 20)
                }
                runs.append(PageRun(region: region, firstPage: PageIndex(first), count: count))
            }
            for (index, run) in runs.enumerated() {
                let next = index + 1 < runs.count ? runs[index + 1] : nil
                let remote = try? source.backgroundBytes(run, then: next)
                let local = try? chain.bytes(region: run.region, first: run.firstPage.rawValue, count: run.count)
                if remote == nil || remote != local { wrong.withLock { $0.append("thread \(thread) read \(index)") } }
            }
        }
        #expect(wrong.value.isEmpty)
        // Nothing was asked for twice or dropped: every page read was counted once.
        let pages: UInt64 = 800 + 4 * 37 + 4 * 20
        #expect(source.transferStatistics?.pagesReceived == pages)
    }

    @Test func concurrentReadersEachGetTheirOwnPages() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        // Several threads at once take connections of their own from the pool.
        let wrong = Shared<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 6) { thread in
            for step in 0..<20 {
                let region = (thread + step) % 2
                let pages = source.pageCount(region: region)
                let first = UInt64(thread * 131 + step * 37) % pages
                let count = Int(min(pages - first, UInt64(1 + (thread * 7 + step * 13) % 64)))
                let remote = try? source.bytes(region: region, first: first, count: count)
                let local = try? chain.bytes(region: region, first: first, count: count)
                if remote == nil || remote != local { wrong.withLock { $0.append("thread \(thread) step \(step)") } }
            }
        }
        #expect(wrong.value.isEmpty)
    }

    @Test func streamDeliversAListInOrderWhateverTheChunkSize() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let source = try server.source()
        // Scattered data pages of both regions, neighbours and backward jumps included, then
        // enough more that the server needs several frames (it sends 256 pages per frame).
        var references = [(0, 1500), (1, 2), (0, 3), (0, 4 * 3), (0, 101), (0, 102), (0, 100), (1, 254), (0, 2046)]
            .map { PageReference(region: $0.0, page: PageIndex(UInt64($0.1))) }
        var generator = SystemRandomNumberGenerator()
        references += (200..<1000).map { PageReference(region: 0, page: PageIndex(UInt64($0))) }.shuffled(using: &generator)
        #expect(references.allSatisfy { !chain.isZeroPage(region: $0.region, page: $0.page) })
        #expect(Set(references).count == references.count)

        for chunks in [[1], [3, 32, 7], [256], [100, 300], [references.count]] {
            var stream = try source.streamPages(references)
            var received: [UInt8] = []
            var next = 0
            var step = 0
            while next < references.count {
                let count = min(chunks[step % chunks.count], references.count - next)
                var buffer = [UInt8](repeating: 0xAA, count: count * 4096)
                var span = buffer.mutableSpan
                var bytes = span.mutableBytes
                try stream.receive(into: &bytes)
                received += buffer
                next += count
                step += 1
            }
            var expected: [UInt8] = []
            for reference in references { expected += try chain.bytes(region: reference.region, first: reference.page.rawValue, count: 1) }
            #expect(received == expected, "chunks \(chunks)")
        }
        // Each finished stream gave its connection back clean: a READ on the pool still works.
        #expect(try source.bytes(region: 1, first: 2, count: 1) == chain.bytes(region: 1, first: 2, count: 1))
        #expect(source.transferStatistics?.pagesReceived == UInt64(5 * references.count + 1))
    }

    /// Connections that never say a word do not fill the server: only clients that proved the
    /// secret count against its limit, and silent handshakes past their own cap end the oldest.
    @Test func silentConnectionsNeitherFillTheServerNorKeepAClientOut() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, maximumConnections: 2)
        let silent = try (0..<(PageServer.maximumPendingHandshakes + 8)).map { _ in
            try StreamSocket.connect(to: server.endpoint, timeoutMilliseconds: 2000)
        }
        defer { for socket in silent { socket.shutdown() } }
        #expect(try server.source().bytes(region: 1, first: 2, count: 1) == chain.bytes(region: 1, first: 2, count: 1))
        #expect(server.server.connectionCount <= 2)
    }

    @Test func serverTurnsAwayConnectionsPastItsLimit() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, maximumConnections: 1)
        var first: RemotePageSource? = try server.source()
        // The first source holds the only connection in its pool.
        let error = #expect(throws: TransportError.self) { _ = try server.source() }
        // A full server is like one that is away: the first contact fails, a reconnect would retry.
        guard case .busy = error else {
            Issue.record("expected busy, got \(String(describing: error))")
            return
        }
        #expect(error?.isConnectionLoss == true)
        #expect(try first?.bytes(region: 0, first: 0, count: 1) == chain.bytes(region: 0, first: 0, count: 1))
        first = nil
        // Once the first client is gone (its session ends when the socket closes), a new one is served.
        let deadline = Date().addingTimeInterval(20)
        while server.server.connectionCount > 0, Date() < deadline { usleep(1000) }
        #expect(try server.source().bytes(region: 1, first: 2, count: 1) == chain.bytes(region: 1, first: 2, count: 1))
    }
}

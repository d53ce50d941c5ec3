import LinuxSystem
import Foundation
import Glibc
import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// Post-copy's source side: a paused VM's live regions served with the page protocol reach a
/// `RemotePageSource` (and a lazy restore) byte for byte, holes as zero pages, with no working
/// set; `stop` ends the server and its connections without leaving anyone waiting.
@Suite struct LiveServedMemoryTests {
    /// Pages written in each region of `LiveFixture`; every other page of a memfd region is a hole.
    static let written: [[UInt64]] = [
        // A data area (crossing bytes of the bitmap) with a page of zeros inside it at 20, a
        // lone page, a run across a 64-page bitmap word, and the last page.
        Array(10..<40) + [100] + Array(200..<264) + [511],
        [0, 63],
        [3],
    ]
    static let zeroWrittenPage: UInt64 = 20

    /// "ram" and "high" are memfds with holes; "low" is anonymous memory, which has no
    /// descriptor to ask about holes, so all of it is data.
    static func regions() throws -> (regions: [GuestRegion], shapes: [SnapshotRegionShape]) {
        let regions = [
            try GuestRegion(name: "ram", sizeInBytes: 512 * 4096, backing: .memfd),
            try GuestRegion(name: "high", sizeInBytes: 64 * 4096, backing: .memfd),
            try GuestRegion(name: "low", sizeInBytes: 16 * 4096, backing: .anonymous),
        ]
        for (index, region) in regions.enumerated() {
            for page in written[index] {
                let bytes = index == 0 && page == zeroWrittenPage
                    ? [UInt8](repeating: 0, count: 4096) : TransportFixture.pageBytes(region: index, page: page, seed: 7)
                try region.write(bytes, at: RegionOffset(page * 4096))
            }
        }
        let addresses: [UInt64] = [0x10_0000, 1 << 32, 0]
        let shapes = zip(regions, addresses).map { region, address in
            SnapshotRegionShape(name: region.name, sizeInBytes: region.sizeInBytes, placements: [
                GuestPlacement(guestAddress: GuestAddress(address), sizeInBytes: region.sizeInBytes, regionOffset: RegionOffset(0)),
            ])
        }
        return (regions, shapes)
    }

    static let state = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }

    static func memory(fingerprint: UInt64 = 0x5EED_F00D_1234_5678) throws -> (LiveServedMemory, [GuestRegion], [SnapshotRegionShape]) {
        let (regions, shapes) = try Self.regions()
        return (try LiveServedMemory(regions: regions, shapes: shapes, state: state, fingerprint: fingerprint), regions, shapes)
    }

    static func contents(_ region: GuestRegion) throws -> [UInt8] { try region.read(count: Int(region.sizeInBytes), at: RegionOffset(0)) }

    @Test func manifestMarksHolesAsZeroPages() throws {
        let (memory, regions, shapes) = try Self.memory()
        let server = try LiveServer(memory)
        let source = try server.source()
        #expect(source.manifest.fingerprint == 0x5EED_F00D_1234_5678)
        #expect(source.manifest.regions == shapes)
        #expect(source.manifest.state == Self.state)
        #expect(source.manifest.workingSetPages == 0)
        // memfd pages are 4 KiB here (shmem transparent huge pages are off by default), so the
        // data pages are exactly the pages written, the page written with zeros included.
        for index in 0..<2 {
            let data = (0..<regions[index].sizeInBytes / 4096).filter { !source.isZeroPage(region: index, page: PageIndex($0)) }
            #expect(data == Self.written[index], "region \(regions[index].name)")
            // The fill steps over the holes between them, a bitmap word at a time.
            let end = regions[index].sizeInBytes / 4096
            for start in [UInt64(0)] + data.flatMap({ [$0, $0 + 1] }) where start <= end {
                let next = data.first { $0 >= start } ?? end
                #expect(source.zeroPageCount(region: index, from: PageIndex(start), before: PageIndex(end)) == next - start)
            }
        }
        #expect(!source.isZeroPage(region: 0, page: PageIndex(Self.zeroWrittenPage)))
        #expect((0..<16).allSatisfy { !source.isZeroPage(region: 2, page: $0) })
    }

    @Test func clientReadsTheRegionsExactBytes() throws {
        let (memory, regions, _) = try Self.memory()
        let server = try LiveServer(memory)
        let source = try server.source()
        for (index, region) in regions.enumerated() {
            // Every page, holes included, in READs; then a few odd ranges.
            #expect(try source.bytes(region: index, first: 0, count: Int(region.sizeInBytes / 4096)) == Self.contents(region))
        }
        for (region, first, count) in [(0, 19, 3), (0, 511, 1), (0, 41, 100), (1, 63, 1), (2, 0, 16)] {
            let expected = try regions[region].read(count: count * 4096, at: RegionOffset(UInt64(first) * 4096))
            #expect(try source.bytes(region: region, first: UInt64(first), count: count) == expected)
        }
        // The data pages in one LIST stream, in a scrambled order (several frames).
        var generator = SystemRandomNumberGenerator()
        let references = (Self.written[0].map { PageReference(region: 0, page: PageIndex($0)) } + [PageReference(region: 1, page: 63)]).shuffled(using: &generator)
        var stream = try source.streamPages(references)
        var received = [UInt8](repeating: 0xAA, count: references.count * 4096)
        var span = received.mutableSpan
        var bytes = span.mutableBytes
        try stream.receive(into: &bytes)
        var expected: [UInt8] = []
        for reference in references { expected += try regions[reference.region].read(count: 4096, at: reference.page.regionOffset) }
        #expect(received == expected)
    }

    @Test func lazyRestoreFromLiveMemoryEndsWithTheSameMemory() throws {
        let (memory, regions, _) = try Self.memory()
        let server = try LiveServer(memory)
        let source = try server.source()
        let destination = try regions.map { try GuestRegion(name: $0.name, sizeInBytes: $0.sizeInBytes, backing: .memfd) }
        let pager = try LazyPager(regions: destination, source: source)
        try pager.start(onFailure: { _ in })
        #expect(pager.waitUntilFilled())
        for (mine, theirs) in zip(destination, regions) { #expect(try Self.contents(mine) == Self.contents(theirs), "\(mine.name)") }
    }

    @Test func workingSetIsRefusedCleanly() throws {
        let (memory, _, _) = try Self.memory()
        let server = try LiveServer(memory)
        let source = try server.source()
        #expect(try source.loadWorkingSet() == nil)
        let set = WorkingSet(fingerprint: memory.fingerprint, pages: [PageReference(region: 0, page: 10)], recordedMilliseconds: 1)
        let error = #expect(throws: PageSourceError.self) { try source.storeWorkingSet(set) }
        #expect(error?.description.contains("keeps no working set") == true)
        // Refusing it broke nothing: the server serves on.
        #expect(try source.bytes(region: 0, first: 100, count: 1) == TransportFixture.pageBytes(region: 0, page: 100, seed: 7))
        #expect(throws: PageSourceError.self) { try memory.storeWorkingSet(set) }
    }

    @Test func stopEndsRunAndOpenConnections() throws {
        let (memory, _, _) = try Self.memory()
        let server = try LiveServer(memory)
        let source = try server.source(reconnectTimeoutMilliseconds: 300)
        #expect(try source.bytes(region: 1, first: 0, count: 1) == TransportFixture.pageBytes(region: 1, page: 0, seed: 7))
        // A raw connection idle between requests, as a fault connection waits for its next fault.
        let connection = try server.connector().connect()
        connection.socket.setReceiveTimeout(milliseconds: 20_000)  // a hang guard, not a measurement
        let waiting = Shared<TransportError?>(nil)
        let woke = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            do throws(TransportError) { _ = try connection.readFrameHeader(maximumLength: 1 << 20) } catch { waiting.value = error }
            woke.signal()
        }
        usleep(100_000)
        let started = Date()
        server.server.stop()
        #expect(server.finished.wait(timeout: .now() + 10) == .success)
        #expect(server.outcome.value == "returned")
        #expect(woke.wait(timeout: .now() + 10) == .success)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(waiting.value?.isConnectionLoss == true, "\(String(describing: waiting.value))")
        // The pooled connection is shut too, and the listener is gone: the client's request
        // fails once its reconnect window passes instead of hanging.
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 10, count: 1) }
        guard case .remote = error else {
            Issue.record("expected a remote error, got \(String(describing: error))")
            return
        }
        let refused = #expect(throws: TransportError.self) { _ = try server.connector().connect() }
        #expect(refused?.isConnectionLoss == true)
        // Sessions ended quietly: a stop is not an error.
        let deadline = Date().addingTimeInterval(10)
        while server.server.connectionCount > 0, Date() < deadline { usleep(1000) }
        #expect(server.server.connectionCount == 0)
        #expect(server.logs.value.isEmpty, "\(server.logs.value)")
        server.server.stop()  // twice is harmless
    }

    @Test func stopBeforeRunReturnsAtOnce() throws {
        let (memory, _, _) = try Self.memory()
        let server = try TransportFixture.listening {
            try PageServer(memory: memory, security: TransportFixture.security(), listening: $0, log: { _ in })
        }
        server.stop()
        try server.run()
    }

    @Test func gigabyteRegionManifestNeedsNoScan() throws {
        // 1 GiB of memfd, never touched but for three pages: the holes say it all, and no byte
        // of the rest is read (reading it would allocate a gigabyte).
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 30, backing: .memfd)
        let pages: [UInt64] = [0, 77_777, (1 << 18) - 1]
        for page in pages { try region.write(TransportFixture.pageBytes(region: 0, page: page, seed: 1), at: RegionOffset(page * 4096)) }
        let shape = SnapshotRegionShape(name: "ram", sizeInBytes: 1 << 30, placements: [])
        let memory = try LiveServedMemory(regions: [region], shapes: [shape], state: [], fingerprint: 1)
        let manifest = SnapshotManifest(memory: memory, workingSetPages: 0)
        #expect(manifest.dataPages[0].setCount == 3)
        #expect(pages.allSatisfy { manifest.dataPages[0].contains(PageIndex($0)) })
    }

    @Test func regionWithoutHolesIsAllData() throws {
        // Every page of a small memfd written: one data range, every bit set. (Space
        // fallocate reserved would not do: shmem reports it as holes, since it reads as zeros.)
        let region = try GuestRegion(name: "ram", sizeInBytes: 8 << 20, backing: .memfd)
        try region.write([UInt8](repeating: 0x5A, count: 8 << 20), at: RegionOffset(0))
        let shape = SnapshotRegionShape(name: "ram", sizeInBytes: 8 << 20, placements: [])
        let memory = try LiveServedMemory(regions: [region], shapes: [shape], state: [], fingerprint: 1)
        #expect(memory.dataPages(region: 0).setCount == 2048)
        #expect(memory.dataPages(region: 0).words.allSatisfy { $0 == ~0 })
    }

    @Test func shapesMustMatchTheRegions() throws {
        let (regions, shapes) = try Self.regions()
        #expect(throws: GuestMemoryError.self) { _ = try LiveServedMemory(regions: regions, shapes: Array(shapes.dropLast()), state: [], fingerprint: 0) }
        var renamed = shapes
        renamed[1] = SnapshotRegionShape(name: "other", sizeInBytes: shapes[1].sizeInBytes, placements: shapes[1].placements)
        #expect(throws: GuestMemoryError.self) { _ = try LiveServedMemory(regions: regions, shapes: renamed, state: [], fingerprint: 0) }
        var resized = shapes
        resized[0] = SnapshotRegionShape(name: "ram", sizeInBytes: 4096, placements: [])
        #expect(throws: GuestMemoryError.self) { _ = try LiveServedMemory(regions: regions, shapes: resized, state: [], fingerprint: 0) }
    }
}

/// A page server of live memory on its own thread, which records how `run` ended and what the
/// server logged.
final class LiveServer: Sendable {
    let server: PageServer
    let endpoint: Endpoint
    let finished: DispatchSemaphore
    let outcome: Shared<String?>
    let logs: Shared<[String]>

    init(_ memory: any ServedMemory) throws {
        let logs = Shared<[String]>([])
        let server = try TransportFixture.listening { endpoint in
            try PageServer(memory: memory, security: TransportFixture.security(), listening: endpoint, log: { line in logs.withLock { $0.append(line) } })
        }
        self.server = server
        self.logs = logs
        endpoint = try Endpoint(parsing: "127.0.0.1:\(server.port)")
        let (outcome, finished) = (Shared<String?>(nil), DispatchSemaphore(value: 0))
        self.outcome = outcome
        self.finished = finished
        Thread.detachNewThread {
            do {
                try server.run()
                outcome.value = "returned"
            } catch { outcome.value = "\(error)" }
            finished.signal()
        }
    }

    deinit { server.stop() }

    func connector(reconnectTimeoutMilliseconds: Int = 10_000) -> PageServerConnector {
        TransportFixture.connector(endpoint, reconnectTimeoutMilliseconds: reconnectTimeoutMilliseconds)
    }

    func source(reconnectTimeoutMilliseconds: Int = 10_000) throws -> RemotePageSource {
        try RemotePageSource(connector: connector(reconnectTimeoutMilliseconds: reconnectTimeoutMilliseconds))
    }
}

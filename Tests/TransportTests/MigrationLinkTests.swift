import LinuxSystem
import Foundation
import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// The migration protocol's two ends in one process: authentication (its own labels), the
/// plan's checks, and the destination's receive loop writing pages straight into regions.
@Suite struct MigrationLinkTests {
    /// A destination listening on a free port, accepting one migration on a thread.
    final class Destination: Sendable {
        let endpoint: Endpoint
        let accepted = Locked<Result<MigrationLink, TransportError>?>(nil)
        let refusals = Locked<[String]>([])

        init(secret: SharedSecret = TransportFixture.secret) throws {
            let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
            endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
            Thread.detachNewThread { [self] in
                let result: Result<MigrationLink, TransportError>
                do throws(TransportError) {
                    result = .success(try MigrationLink.accept(on: listener, security: TransportFixture.security(secret), log: { line in self.refusals.withLock { $0.append(line) } }))
                } catch { result = .failure(error) }
                accepted.withLock { $0 = result }
            }
        }

        func link() throws -> MigrationLink {
            for _ in 0..<500 {
                if let result = accepted.withLock({ $0 }) { return try result.get() }
                Thread.sleep(forTimeInterval: 0.01)
            }
            throw TransportError.closed(peer: "the test's destination never accepted")
        }
    }

    static let shapes = [
        SnapshotRegionShape(name: "ram", sizeInBytes: 64 * 4096, placements: [
            GuestPlacement(guestAddress: GuestAddress(0), sizeInBytes: 64 * 4096, regionOffset: RegionOffset(0)),
        ]),
        SnapshotRegionShape(name: "extra", sizeInBytes: 8 * 4096, placements: []),
    ]

    static func page(_ value: UInt8) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: Int($0) &* 7) ^ value } }

    /// Sends `pages` (reference, bytes, crc) in one PAGES frame.
    static func send(_ link: MigrationLink, _ pages: [(UInt64, [UInt8], UInt32)]) throws {
        let references = pages.map(\.0), crcs = pages.map(\.2), data = pages.flatMap(\.1)
        try link.sendPages(references: references.span, crcs: crcs.span, data: data.span.bytes)
    }

    /// Peers that connect and say nothing do not hold up the real source: every handshake runs at
    /// once, each with its own deadline (here ten minutes, so waiting one out would fail the
    /// test), and beyond the cap the oldest silent ones are ended.
    @Test func silentPeersDoNotHoldUpTheSource() throws {
        let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
        let endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
        let silent = try (0..<(MigrationLink.maximumPendingHandshakes + 4)).map { _ in
            try StreamSocket.connect(to: endpoint, timeoutMilliseconds: 2000)
        }
        let accepted = Locked<Result<MigrationLink, TransportError>?>(nil)
        Thread.detachNewThread {
            let result: Result<MigrationLink, TransportError>
            do throws(TransportError) {
                result = .success(try MigrationLink.accept(on: listener, security: TransportFixture.security(), log: { _ in }, handshakeMilliseconds: 600_000))
            } catch { result = .failure(error) }
            accepted.withLock { $0 = result }
        }
        let source = try MigrationLink.connect(to: endpoint, security: TransportFixture.security())
        var arrived: Result<MigrationLink, TransportError>?
        for _ in 0..<1000 where arrived == nil {
            arrived = accepted.withLock { $0 }
            if arrived == nil { Thread.sleep(forTimeInterval: 0.01) }
        }
        let link = try #require(try arrived?.get(), "the source was not accepted while silent peers waited")
        try source.sendReady()
        try link.receiveReady()
        // Once the source is in, every silent peer has been ended: each reads the end of its stream.
        var buffer = [UInt8](repeating: 0, count: 256)
        for socket in silent {
            socket.setReceiveTimeout(milliseconds: 5000)
            var ended = false
            reading: for _ in 0..<64 {
                do throws(SystemError) { _ = try socket.receive(into: &buffer, at: 0, count: buffer.count) } catch {
                    if case .closed = error { ended = true }
                    break reading
                }
            }
            #expect(ended, "a silent peer was left waiting")
        }
    }

    @Test func planPagesZerosAndStateArriveInPlace() throws {
        let destination = try Destination()
        let source = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
        let arrived = try destination.link()
        try source.sendPlan(MigrationPlan(mode: .precopy, shapes: Self.shapes))
        let plan = try arrived.receivePlan()
        #expect(plan.shapes == Self.shapes)
        let regions = try SnapshotMemoryLoader.empty(shapes: plan.shapes)
        try arrived.sendReady()
        try source.receiveReady()

        let first = Self.page(1), second = Self.page(2)
        try Self.send(source, [
            (PageReference(region: 0, page: 3).packed, first, CRC32C.checksum(first)),
            (PageReference(region: 1, page: 7).packed, second, CRC32C.checksum(second)),
        ])
        try source.sendPassEnd(pass: 1, pages: 2)
        try source.sendZeroPages([PageReference(region: 0, page: 3).packed])
        try Self.send(source, [(PageReference(region: 0, page: 5).packed, second, CRC32C.checksum(second))])
        try source.sendState(Array("state".utf8))

        var receiver = MigrationReceiver(link: arrived, regions: regions)
        #expect(try receiver.receiveUntilState() == Array("state".utf8))
        #expect(receiver.pagesReceived == 3 && receiver.passes == 1)
        // Page 3, named zero after it had arrived, is a hole of the memfd again: no memory behind
        // it (asked before the reads below, since reading a memfd's hole through a mapping fills it).
        let data = regions[0].dataPages()
        #expect(!data.contains { $0.contains(PageIndex(3)) } && data.contains { $0.contains(PageIndex(5)) }, "\(data)")
        #expect(try regions[0].read(count: 4096, at: RegionOffset(3 * 4096)) == [UInt8](repeating: 0, count: 4096))
        #expect(try regions[0].read(count: 4096, at: RegionOffset(5 * 4096)) == second)
        #expect(try regions[1].read(count: 4096, at: RegionOffset(7 * 4096)) == second)
        try arrived.sendRunning()
        try source.receiveRunning()
    }

    @Test func damagedOrStrayPagesAreRefused() throws {
        let cases: [(UInt64, UInt32?, String)] = [
            (PageReference(region: 0, page: 1).packed, 0xDEAD, "arrived damaged"),
            (PageReference(region: 2, page: 0).packed, nil, "the plan has 2"),
            (PageReference(region: 1, page: 8).packed, nil, "past the end of region extra"),
        ]
        for (reference, crc, expected) in cases {
            let destination = try Destination()
            let source = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
            let arrived = try destination.link()
            let regions = try SnapshotMemoryLoader.empty(shapes: Self.shapes)
            let bytes = Self.page(9)
            try Self.send(source, [(reference, bytes, crc ?? CRC32C.checksum(bytes))])
            var receiver = MigrationReceiver(link: arrived, regions: regions)
            #expect { _ = try receiver.receiveUntilState() } throws: { "\($0)".contains(expected) }
        }
    }

    /// A run of consecutive pages of one region is read in one piece: every page lands where its
    /// record says, a damaged page inside a run is named, and a run that reaches past its region's
    /// end is refused before any of it lands.
    @Test func runsOfPagesLandWholeAndAreCheckedPageByPage() throws {
        let pages: [(region: Int, page: UInt64)] = [(0, 2), (0, 3), (0, 4), (0, 6), (1, 0), (1, 1), (0, 63)]
        func frame(_ damaged: Int? = nil) -> [(UInt64, [UInt8], UInt32)] {
            pages.enumerated().map { index, page in
                let bytes = Self.page(UInt8(index + 1))
                return (PageReference(region: page.region, page: PageIndex(page.page)).packed, bytes, index == damaged ? 0xDEAD : CRC32C.checksum(bytes))
            }
        }
        do {
            let destination = try Destination()
            let source = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
            let arrived = try destination.link()
            let regions = try SnapshotMemoryLoader.empty(shapes: Self.shapes)
            try Self.send(source, frame())
            try source.sendState([1])
            var receiver = MigrationReceiver(link: arrived, regions: regions)
            #expect(try receiver.receiveUntilState() == [1])
            #expect(receiver.pagesReceived == UInt64(pages.count))
            for (index, page) in pages.enumerated() {
                #expect(try regions[page.region].read(count: 4096, at: RegionOffset(page.page * 4096)) == Self.page(UInt8(index + 1)), "\(page)")
            }
            #expect(try regions[0].read(count: 4096, at: RegionOffset(5 * 4096)) == [UInt8](repeating: 0, count: 4096))
        }
        let stray = [(PageReference(region: 1, page: PageIndex(7)).packed, Self.page(1), CRC32C.checksum(Self.page(1))),
                     (PageReference(region: 1, page: PageIndex(8)).packed, Self.page(2), CRC32C.checksum(Self.page(2)))]
        for (sent, expected) in [(frame(1), "page \(PageIndex(3)) of region ram arrived damaged"), (stray, "past the end of region extra")] {
            let destination = try Destination()
            let source = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
            let arrived = try destination.link()
            let regions = try SnapshotMemoryLoader.empty(shapes: Self.shapes)
            try Self.send(source, sent)
            var receiver = MigrationReceiver(link: arrived, regions: regions)
            #expect { _ = try receiver.receiveUntilState() } throws: { "\($0)".contains(expected) }
            #expect(try regions[1].read(count: 4096, at: RegionOffset(7 * 4096)) == [UInt8](repeating: 0, count: 4096))
        }
    }

    @Test func anUnexpectedFrameOrAnErrorEndsTheStream() throws {
        let destination = try Destination()
        let source = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
        let arrived = try destination.link()
        try source.sendReady()  // a destination's frame, from the source
        var receiver = MigrationReceiver(link: arrived, regions: try SnapshotMemoryLoader.empty(shapes: Self.shapes))
        #expect { _ = try receiver.receiveUntilState() } throws: { "\($0)".contains("in the middle of a migration") }

        arrived.connection.sendError("no room for this guest")
        #expect { try source.receiveReady() } throws: { "\($0)".contains("no room for this guest") }
    }

    @Test func plansOutOfBoundsAreRefused() throws {
        func refused(_ json: String) -> Bool {
            (try? MigrationPlan.decode(Array(json.utf8), peer: "test")) == nil
        }
        let region = #"{"name":"ram","sizeInBytes":4096,"placements":[]}"#
        #expect(!refused(#"{"mode":"precopy","regions":[\#(region)]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[]}"#))
        #expect(refused(#"{"mode":"teleport","regions":[\#(region)]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":4095,"placements":[]}]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[\#(region),\#(region)]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":4096,"placements":[{"guestAddress":0,"sizeInBytes":8192,"regionOffset":0}]}]}"#))
        #expect(refused(#"{"mode":"shared","regions":[\#(region)]}"#))
        #expect(refused("not json"))
        #expect(!refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":8192,"placements":[],"dataPages":[[0,2]]}]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":8192,"placements":[],"dataPages":[[0,3]]}]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":8192,"placements":[],"dataPages":[[1,1]]}]}"#))
        #expect(refused(#"{"mode":"precopy","regions":[{"name":"ram","sizeInBytes":8192,"placements":[],"dataPages":[[0]]}]}"#))
    }

    @Test func theWrongSecretOrAPageClientIsRefusedAndTheWaitGoesOn() throws {
        let destination = try Destination()
        #expect { _ = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security(SharedSecret(bytes: Array("another secret of 32 bytes here!".utf8)))) }
            throws: { "\($0)".contains("another secret") }
        // A page-protocol client speaks another magic and other proof labels.
        let socket = try StreamSocket.connect(to: destination.endpoint, timeoutMilliseconds: 2000)
        socket.setReceiveTimeout(milliseconds: 20_000)  // a hang guard
        let security = TransportFixture.security()
        #expect { _ = try Handshake.join(try security.connection(socket, server: false), security: security) } throws: { _ in true }
        socket.shutdown()
        // Each handshake runs on its own: the page client's ends when it hangs up.
        for _ in 0..<500 where destination.refusals.withLock({ $0.count }) < 2 { Thread.sleep(forTimeInterval: 0.01) }
        // The destination still takes the real source.
        _ = try MigrationLink.connect(to: destination.endpoint, security: TransportFixture.security())
        _ = try destination.link()
        #expect(destination.refusals.withLock { $0.count } == 2)
    }
}

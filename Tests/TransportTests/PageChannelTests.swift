import Foundation
import GuestMemory
import LinuxSystem
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// Pre-copy over page channels, both ends in one process: channels join by token and index,
/// passes stay in order across channels, and a channel's failure ends the migration with its
/// own reason.
@Suite struct PageChannelTests {
    static let token = (0..<16).map { UInt8($0 &* 17) }

    /// A destination that has accepted the control link and then `count` channels (on a thread).
    final class Destination: Sendable {
        let endpoint: Endpoint
        let control = Locked<MigrationLink?>(nil)
        let channels = Locked<Result<[MigrationLink], TransportError>?>(nil)
        let refusals = Shared<[String]>([])

        init(count: Int, waitMilliseconds: Int = 20_000) throws {
            let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
            endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
            let log: @Sendable (String) -> Void = { [refusals] line in refusals.withLock { $0.append(line) } }
            Thread.detachNewThread { [self] in
                guard let link = try? MigrationLink.accept(on: listener, security: TransportFixture.security(), log: log) else { return }
                control.withLock { $0 = link }
                // As a real destination: READY first, then the channels.
                try? link.sendReady()
                let result: Result<[MigrationLink], TransportError>
                do throws(TransportError) {
                    result = .success(try MigrationLink.acceptChannels(
                        count: count, token: PageChannelTests.token, on: listener, security: TransportFixture.security(), log: log,
                        waitMilliseconds: waitMilliseconds))
                } catch { result = .failure(error) }
                channels.withLock { $0 = result }
            }
        }

        func wait() throws -> (MigrationLink, [MigrationLink]) {
            for _ in 0..<3000 {
                if let result = channels.withLock({ $0 }), let link = control.withLock({ $0 }) { return (link, try result.get()) }
                Thread.sleep(forTimeInterval: 0.01)
            }
            throw TransportError.closed(peer: "the test's destination never took its channels")
        }
    }

    static func page(_ value: UInt8) -> (bytes: [UInt8], crc: UInt32) {
        let bytes = MigrationLinkTests.page(value)
        return (bytes, CRC32C.checksum(bytes))
    }

    static func send(_ link: MigrationLink, page: UInt64, _ value: UInt8) throws {
        let (bytes, crc) = Self.page(value)
        try MigrationLinkTests.send(link, [(PageReference(region: 0, page: PageIndex(page)).packed, bytes, crc)])
    }

    /// The source's side: control link, then channels by index (`indices` may repeat or lie).
    static func connect(_ endpoint: Endpoint, channels indices: [Int], token: [UInt8] = token) throws -> (MigrationLink, [MigrationLink]) {
        let control = try MigrationLink.connect(to: endpoint, security: TransportFixture.security())
        try control.receiveReady()
        let channels = try indices.map { try MigrationLink.connectChannel(to: endpoint, security: TransportFixture.security(), token: token, index: $0) }
        return (control, channels)
    }

    /// Both ends of a migration with two channels (connected in the order `channels` names), the
    /// destination's channel threads reading into fresh regions.
    static func migration(channels indices: [Int]) throws
        -> (source: MigrationLink, sent: [MigrationLink], control: MigrationLink, regions: [GuestRegion], receivers: PageChannelReceivers) {
        let destination = try Destination(count: indices.count)
        let (source, sent) = try connect(destination.endpoint, channels: indices)
        let (control, channels) = try destination.wait()
        let regions = try SnapshotMemoryLoader.empty(shapes: MigrationLinkTests.shapes)
        return (source, sent, control, regions, try PageChannelReceivers(links: channels, regions: regions))
    }

    @Test func plansWithChannelsAreChecked() throws {
        let shapes = MigrationLinkTests.shapes
        let plan = MigrationPlan(mode: .precopy, shapes: shapes, channels: 4, channelToken: Self.token)
        let decoded = try MigrationPlan.decode(plan.encoded(), peer: "test")
        #expect(decoded.pageChannelCount == 4 && decoded.channelTokenBytes == Self.token)
        #expect(try MigrationPlan.decode(MigrationPlan(mode: .precopy, shapes: shapes).encoded(), peer: "test").pageChannelCount == 0)
        let region = #"{"name":"ram","sizeInBytes":4096,"placements":[]}"#
        let token = Data(Self.token).base64EncodedString()
        for (json, expected) in [
            (#"{"mode":"precopy","regions":[\#(region)],"channels":17,"channelToken":"\#(token)"}"#, "17 page channels"),
            (#"{"mode":"precopy","regions":[\#(region)],"channels":1,"channelToken":"\#(token)"}"#, "1 page channels"),
            (#"{"mode":"postcopy","regions":[\#(region)],"channels":2,"channelToken":"\#(token)"}"#, "only pre-copy"),
            (#"{"mode":"precopy","regions":[\#(region)],"channels":2}"#, "no channel token"),
            (#"{"mode":"precopy","regions":[\#(region)],"channels":2,"channelToken":"AAAA"}"#, "no channel token"),
        ] {
            #expect { _ = try MigrationPlan.decode(Array(json.utf8), peer: "test") } throws: { "\($0)".contains(expected) }
        }
    }

    /// A page sent in pass 1 on channel 0 and again in pass 2 on channel 1 ends as pass 2 sent
    /// it, even when channel 1's pass 2 is on the wire before channel 0's pass 1: channel 1
    /// waits at pass 1's end for channel 0. Pages of both channels and of the control connection count.
    @Test func passesStayInOrderAcrossChannels() throws {
        let (source, sent, control, regions, receivers) = try Self.migration(channels: [1, 0])
        defer { receivers.end() }

        // Channel index 1 was connected first: `sent[0]` is channel 1.
        let (one, zero) = (sent[0], sent[1])
        try one.sendPassEnd(pass: 1, pages: 0)
        try Self.send(one, page: 4, 2)
        try Self.send(one, page: 6, 3)
        try one.sendPassEnd(pass: 2, pages: 2)
        Thread.sleep(forTimeInterval: 0.2)  // channel 1's pass 2 waits in its socket, not in memory
        #expect(try regions[0].read(count: 4096, at: RegionOffset(6 * 4096)) == [UInt8](repeating: 0, count: 4096))
        try Self.send(zero, page: 4, 1)
        try zero.sendPassEnd(pass: 1, pages: 1)
        try zero.sendPassEnd(pass: 2, pages: 1)
        try source.sendPassEnd(pass: 1, pages: 1)
        try source.sendPassEnd(pass: 2, pages: 3)
        try source.sendState(Array("state".utf8))
        one.close()
        zero.close()

        var receiver = MigrationReceiver(link: control, regions: regions, barrier: receivers.barrier)
        #expect(try receiver.receiveUntilState() == Array("state".utf8))
        receivers.end()
        #expect(receivers.pagesReceived == 3)
        #expect(try regions[0].read(count: 4096, at: RegionOffset(4 * 4096)) == Self.page(2).bytes)
        #expect(try regions[0].read(count: 4096, at: RegionOffset(6 * 4096)) == Self.page(3).bytes)
    }

    /// Connections that prove the secret but name another migration or a channel out of range
    /// are refused and logged; the real channels still join.
    @Test func strangersAreRefusedAndTheRealChannelsJoin() throws {
        let destination = try Destination(count: 2)
        _ = try Self.connect(destination.endpoint, channels: [])
        _ = try MigrationLink.connectChannel(to: destination.endpoint, security: TransportFixture.security(), token: Array(Self.token.reversed()), index: 0)
        _ = try MigrationLink.connectChannel(to: destination.endpoint, security: TransportFixture.security(), token: Self.token, index: 7)
        for _ in 0..<500 where destination.refusals.withLock({ $0.count }) < 2 { Thread.sleep(forTimeInterval: 0.01) }
        let refusals = destination.refusals.withLock { $0 }
        #expect(refusals.contains { $0.contains("another migration's token") }, "\(refusals)")
        #expect(refusals.contains { $0.contains("page channel 7; the plan has 2") }, "\(refusals)")
        let real = try [0, 1].map { try MigrationLink.connectChannel(to: destination.endpoint, security: TransportFixture.security(), token: Self.token, index: $0) }
        let (_, channels) = try destination.wait()
        #expect(channels.count == 2)
        _ = real
    }

    @Test func channelsThatNeverJoinEndTheWait() throws {
        let destination = try Destination(count: 3, waitMilliseconds: 300)
        _ = try Self.connect(destination.endpoint, channels: [0])
        #expect { _ = try destination.wait() } throws: { "\($0)".contains("for 2 of 3") }
    }

    /// A damaged page on a channel ends every channel, and the control connection's wait at the
    /// pass's end reports that page, not a closed connection.
    @Test func aChannelsFailureIsTheMigrationsFailure() throws {
        let (source, sent, control, regions, receivers) = try Self.migration(channels: [0, 1])
        defer { receivers.end() }
        let (bytes, _) = Self.page(5)
        try MigrationLinkTests.send(sent[1], [(PageReference(region: 0, page: 2).packed, bytes, 0xBAD)])
        try source.sendPassEnd(pass: 1, pages: 1)
        var receiver = MigrationReceiver(link: control, regions: regions, barrier: receivers.barrier)
        #expect { _ = try receiver.receiveUntilState() } throws: { "\($0)".contains("arrived damaged") }
        // The other channel was ended too: the source's next frame on it fails or reads the end.
        var ended = false
        for _ in 0..<200 where !ended {
            do { try Self.send(sent[0], page: 1, 1) } catch { ended = true }
            if !ended { Thread.sleep(forTimeInterval: 0.01) }
        }
        #expect(ended)
    }

    /// A channel the source closes in the middle of a pass fails the migration; one closed after a
    /// pass's end fails only a wait for a later pass.
    @Test func aChannelClosedBeforeALaterPassEndsTheMigration() throws {
        let (source, sent, control, regions, receivers) = try Self.migration(channels: [0, 1])
        defer { receivers.end() }
        for channel in sent { try channel.sendPassEnd(pass: 1, pages: 0) }
        sent[0].close()
        try sent[1].sendPassEnd(pass: 2, pages: 0)
        try source.sendPassEnd(pass: 1, pages: 0)
        try source.sendPassEnd(pass: 2, pages: 0)
        var receiver = MigrationReceiver(link: control, regions: regions, barrier: receivers.barrier)
        #expect { _ = try receiver.receiveUntilState() } throws: { "\($0)".contains("page channel 0 closed after pass 1, before pass 2") }
    }
}

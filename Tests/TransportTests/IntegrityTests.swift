import Foundation
import Glibc
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// No damaged page reaches the client: the server refuses to send a page that fails its own
/// check, and the client refuses a page damaged on the way.
@Suite struct IntegrityTests {
    let directory = TemporaryDirectory()

    @Test func pageDamagedOnTheWayIsRefused() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint, tls: false))
        relay.corrupt(true)
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 0, count: 1024) }
        #expect(error?.description.contains("arrived damaged") == true, "\(String(describing: error))")
        // Damage is not a lost connection: no reconnect hid it.
        #expect(source.transferStatistics?.reconnects == 0)
        relay.corrupt(false)
        #expect(try source.bytes(region: 0, first: 0, count: 1024) == chain.bytes(region: 0, first: 0, count: 1024))
    }

    @Test func corruptPageOnTheServerIsRefusedNotSent() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        // Flip a byte of stored page 150 of "ram"; its CRC no longer matches.
        let reader = try SnapshotReader(path: chain.path)
        let ram = try #require(reader.region(named: "ram"))
        let fd = open(chain.path, O_RDWR)
        try #require(fd >= 0)
        var byte: UInt8 = 0
        let offset = off_t(reader.pagesFileOffset(ram) + 150 * 4096 + 17)
        #expect(pread(fd, &byte, 1, offset) == 1)
        byte ^= 0xFF
        #expect(pwrite(fd, &byte, 1, offset) == 1)
        close(fd)

        let server = try TestServer(chain: chain)
        let source = try server.source()
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 100, count: 100) }
        #expect(error?.description.contains("page 150 is corrupt") == true, "\(String(describing: error))")
        var stream = try source.streamPages([PageReference(region: 0, page: 3), PageReference(region: 0, page: 150)])
        var buffer = [UInt8](repeating: 0, count: 2 * 4096)
        var span = buffer.mutableSpan
        var bytes = span.mutableBytes
        var refused = false
        do { try stream.receive(into: &bytes) } catch { refused = true }
        #expect(refused)
        // The pages around it are still served.
        #expect(try source.bytes(region: 0, first: 151, count: 100) == chain.bytes(region: 0, first: 151, count: 100))
    }
}

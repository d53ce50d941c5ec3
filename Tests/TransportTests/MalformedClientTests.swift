import LinuxSystem
import Foundation
import Paging
import Testing
import TestSupport
@testable import Transport

/// A client that breaks the protocol gets one ERROR frame and a closed connection, and the
/// server goes on serving everyone else.
@Suite struct MalformedClientTests {
    let directory = TemporaryDirectory()

    /// A request sent after a correct handshake, and a word its ERROR message must contain.
    struct BadRequest {
        let name: String
        let bytes: [UInt8]
        let mention: String
    }

    static func read(region: UInt32, first: UInt64, count: UInt32) -> [UInt8] {
        TransportFixture.frame(FrameType.read.rawValue, TransportFixture.le(region) + TransportFixture.le(first) + TransportFixture.le(count))
    }

    static func list(count: UInt32, _ references: [UInt64]) -> [UInt8] {
        TransportFixture.frame(FrameType.list.rawValue, TransportFixture.le(count) + references.flatMap { TransportFixture.le($0) })
    }

    static let badRequests: [BadRequest] = [
        BadRequest(name: "region past the last", bytes: read(region: 2, first: 0, count: 1), mention: "region 2 does not exist"),
        BadRequest(name: "huge region number", bytes: read(region: .max, first: 0, count: 1), mention: "does not exist"),
        BadRequest(name: "page past the end", bytes: read(region: 1, first: 256, count: 1), mention: "inside its 256"),
        BadRequest(name: "run past the end", bytes: read(region: 1, first: 250, count: 7), mention: "inside its 256"),
        BadRequest(name: "run wrapping around", bytes: read(region: 0, first: .max, count: 2), mention: "inside its 2048"),
        BadRequest(name: "count 0", bytes: read(region: 0, first: 0, count: 0), mention: "expected 1 to 1024"),
        BadRequest(name: "count 2000", bytes: read(region: 0, first: 0, count: 2000), mention: "expected 1 to 1024"),
        BadRequest(name: "READ of 15 bytes", bytes: TransportFixture.frame(FrameType.read.rawValue, [UInt8](repeating: 0, count: 15)), mention: "16 bytes"),
        BadRequest(name: "unknown frame type", bytes: TransportFixture.frame(99, []), mention: "unknown frame type 99"),
        BadRequest(name: "frame of length 0", bytes: [0, 0, 0, 0, FrameType.read.rawValue], mention: "length 0"),
        // Only the header is sent: the server must refuse it without waiting for 100 MiB.
        BadRequest(name: "frame of 100 MiB", bytes: TransportFixture.le(UInt32(100 << 20)) + [FrameType.list.rawValue], mention: "at most"),
        BadRequest(name: "LIST claiming 2 pages, holding 1", bytes: list(count: 2, [0]), mention: "a LIST of 2 pages in 12 bytes"),
        BadRequest(name: "LIST of 0 pages", bytes: list(count: 0, []), mention: "a LIST of 0 pages"),
        BadRequest(name: "LIST not in 8-byte references", bytes: TransportFixture.frame(FrameType.list.rawValue, [1, 0, 0, 0, 9]), mention: "LIST request of 5 bytes"),
        BadRequest(name: "LIST naming a page outside", bytes: list(count: 2, [0, 1 << 56 | 256]), mention: "inside its 256"),
        BadRequest(name: "a reply type as a request", bytes: TransportFixture.frame(FrameType.manifest.rawValue, []), mention: "is not a request"),
        BadRequest(name: "MANIFEST request with a payload", bytes: TransportFixture.frame(FrameType.manifestRequest.rawValue, [1]), mention: "no payload"),
        BadRequest(name: "a second AUTH", bytes: TransportFixture.frame(FrameType.auth.rawValue, []), mention: "is not a request"),
        BadRequest(name: "BACKGROUND with a payload", bytes: TransportFixture.frame(FrameType.background.rawValue, [0]), mention: "no payload"),
        BadRequest(name: "damaged working set", bytes: TransportFixture.frame(FrameType.putWorkingSet.rawValue, Array("ENGRAMWS".utf8)), mention: "ENGRAMWS"),
    ]

    @Test func badRequestsAfterTheHandshakeGetAnErrorAndAClose() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        for request in Self.badRequests {
            let connection = try server.authenticatedConnection()
            try connection.socket.send(request.bytes)
            let answer = connection.errorThenClose()
            #expect(answer.message?.contains(request.mention) == true, "\(request.name): \(answer.message ?? "no ERROR frame")")
            #expect(answer.closed, "\(request.name): the connection stayed open")
        }
        try expectStillServes(server, chain)
    }

    @Test func garbageInsteadOfAuthGetsAnErrorAndAClose() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        let garbage: [[UInt8]] = [
            Array("this is not an AUTH frame at all, just text\r\n".utf8),
            // Of the right size, from something that is not an Engram client.
            TransportFixture.frame(FrameType.auth.rawValue, Array("NOTENGRM".utf8) + TransportFixture.le(UInt32(1)) + [UInt8](repeating: 0, count: 64)),
            // A READ before authenticating.
            MalformedClientTests.read(region: 0, first: 0, count: 1),
        ]
        for bytes in garbage {
            let socket = try StreamSocket.connect(to: server.endpoint, timeoutMilliseconds: 5000)
            socket.setReceiveTimeout(milliseconds: 20_000)  // a hang guard
            let connection = FramedConnection(socket: socket)
            _ = try connection.readFrame(.hello, maximumLength: 8 + 4 + WireProtocol.nonceSize)
            try socket.send(bytes)
            let answer = connection.errorThenClose()
            #expect(answer.message != nil && answer.closed, "\(bytes.prefix(12)): \(answer)")
        }
        try expectStillServes(server, chain)
    }

    @Test func authFrameOfTheWrongSizeGetsAnErrorAndAClose() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        // Too short to hold magic, version, nonce and proof: the server must say so like for
        // any other bad AUTH, not just hang up.
        let full: [UInt8] = WireProtocol.magic + [1, 0, 0, 0] + [UInt8](repeating: 1, count: 64)
        for size in [0, 10, 75] {
            let socket = try StreamSocket.connect(to: server.endpoint, timeoutMilliseconds: 5000)
            socket.setReceiveTimeout(milliseconds: 20_000)  // a hang guard
            let connection = FramedConnection(socket: socket)
            _ = try connection.readFrame(.hello, maximumLength: 8 + 4 + WireProtocol.nonceSize)
            try socket.send(TransportFixture.frame(FrameType.auth.rawValue, Array(full.prefix(size))))
            let answer = connection.errorThenClose()
            #expect(answer.message != nil && answer.closed, "AUTH of \(size) bytes: \(answer)")
        }
        try expectStillServes(server, chain)
    }

    @Test func clientThatLeavesMidRequestHarmsNobody() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        // Half a READ, then gone; and a READ whose 4 MiB answer is never read.
        do {
            let connection = try server.authenticatedConnection()
            try connection.socket.send(Array(Self.read(region: 0, first: 0, count: 1).prefix(9)))
        }
        do {
            let connection = try server.authenticatedConnection()
            try connection.socket.send(Self.read(region: 0, first: 0, count: 1024))
        }
        try expectStillServes(server, chain)
    }

    /// A fresh, correct client still reads the chain's bytes from `server`.
    private func expectStillServes(_ server: TestServer, _ chain: some PageSource) throws {
        let source = try server.source()
        #expect(try source.bytes(region: 0, first: 1000, count: 600) == chain.bytes(region: 0, first: 1000, count: 600))
        #expect(try source.bytes(region: 1, first: 0, count: 256) == chain.bytes(region: 1, first: 0, count: 256))
    }
}

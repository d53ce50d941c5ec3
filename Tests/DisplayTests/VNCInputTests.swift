import Display
import Foundation
import Glibc
import Testing

/// Client messages other than update requests: keys, ignored input, and input that ends a
/// connection without disturbing anyone else.
@Suite struct VNCInputTests {
    @Test func keyEventsReachTheCallback() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.keyEvent(0xFF0D, down: true)  // Return
        try client.keyEvent(0xFF0D, down: false)
        try client.keyEvent(0x61, down: true)  // a
        #expect(fixture.recorder.wait { $0.keys.withLock { $0.count == 3 } })
        let keys = fixture.recorder.keys.withLock { $0 }
        #expect(keys.map(\.0) == [0xFF0D, 0xFF0D, 0x61])
        #expect(keys.map(\.1) == [true, false, true])
    }

    @Test func pointerEventsAndShortClipboardTextAreIgnored() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.send([5, 1, 0, 10, 0, 20])  // PointerEvent
        try client.send([6, 0, 0, 0] + RFBTestClient.be32(5) + Array("hello".utf8))  // ClientCutText
        try client.setEncodings([0, 16, -239, -223, 7, 1_000_000])
        try client.keyEvent(0x62, down: true)
        #expect(fixture.recorder.wait { $0.keys.withLock { $0.count == 1 } })
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        try fixture.expectUpdateMatchesFile(client, encoding: 16)
    }

    /// Bytes after a good handshake that must end that connection, and a word its log line says.
    static let badMessages: [(name: String, bytes: [UInt8], mention: String)] = [
        ("unknown message type", [200, 0, 0, 0], "unknown message type 200"),
        ("ClientCutText of 16 MiB", [6, 0, 0, 0] + RFBTestClient.be32(16 << 20), "ClientCutText of 16777216 bytes"),
        ("ClientCutText with a negative length", [6, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xF0], "ClientCutText of"),
        ("colour-map pixel format", [0, 0, 0, 0] + {
            var format = PixelFormat.native
            format.trueColour = false
            format.bitsPerPixel = 8
            return format.encoded
        }(), "colour-map"),
        ("24 bpp pixel format", [0, 0, 0, 0] + {
            var format = PixelFormat.native
            format.bitsPerPixel = 24
            return format.encoded
        }(), "24 bits per pixel"),
    ]

    @Test func malformedInputClosesOnlyThatConnection() throws {
        let fixture = try VNCServerFixture()
        let bystander = try fixture.viewer()
        for message in Self.badMessages {
            let client = try fixture.viewer()
            try client.send(message.bytes)
            #expect(client.isClosedByServer(), "\(message.name)")
            #expect(fixture.recorder.wait { $0.lines.withLock { $0.contains { $0.contains(message.mention) } } }, "\(message.name)")
            // The viewer connected before goes on being served.
            try bystander.requestUpdate(incremental: false, width: 200, height: 150)
            try fixture.expectUpdateMatchesFile(bystander, encoding: 0)
        }
        // Each line names the peer and says what was wrong.
        let dropped = fixture.recorder.lines.withLock { $0.filter { $0.contains("dropped") } }
        #expect(dropped.count == Self.badMessages.count)
        #expect(dropped.allSatisfy { $0.hasPrefix("vnc: dropped: 127.0.0.1:") && !$0.contains("\n") })
    }

    @Test func aViewerThatLeavesMidUpdateIsDroppedQuietly() throws {
        let fixture = try VNCServerFixture(width: 2000, height: 1500)
        do {
            let client = try fixture.viewer()
            try client.requestUpdate(incremental: false, width: 2000, height: 1500)
            _ = try client.read(100)
        }
        #expect(fixture.recorder.wait { $0.lines.withLock { $0.contains { $0.contains("disconnected") } } })
        #expect(fixture.recorder.lines.withLock { !$0.contains { $0.contains("dropped") } })
        let other = try fixture.viewer()
        try other.requestUpdate(incremental: false, width: 64, height: 64)
        try fixture.expectUpdateMatchesFile(other, encoding: 0)
    }

    @Test func stopCutsViewersOffAndReturns() throws {
        let fixture = try VNCServerFixture()
        let idle = try fixture.viewer()
        let waiting = try fixture.viewer()
        try waiting.requestUpdate(incremental: false, width: 200, height: 150)
        _ = try waiting.readUpdate()
        try waiting.requestUpdate(incremental: true, width: 200, height: 150)
        let handshaking = try fixture.client()  // connected, never finishes the handshake
        _ = try handshaking.read(12)  // the server's version: its thread runs
        fixture.server.stop()
        #expect(idle.isClosedByServer() && waiting.isClosedByServer() && handshaking.isClosedByServer())
        #expect(fixture.server.statistics.connections == 3)
        #expect(throws: RFBTestClient.Failure.self) { _ = try fixture.client() }
        fixture.server.stop()  // twice is fine
    }

    @Test func runServesInTheForegroundUntilStopped() throws {
        let fixture = try VNCServerFixture()
        let server = try VNCServer(view: try FramebufferView(path: fixture.file.path), host: "127.0.0.1", port: 0, log: { _ in })
        let finished = ServerRecorder()
        let thread = Thread {
            try? server.run()
            finished.log("returned")
        }
        thread.start()
        let client = try RFBTestClient(port: server.boundPort)
        try client.handshake()
        server.stop()
        #expect(finished.wait { $0.lines.withLock { $0 == ["returned"] } })
        #expect(client.isClosedByServer())
    }
}

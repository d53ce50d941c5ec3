import LinuxSystem
import Display
import Foundation
import Testing
import TestSupport

/// Lines a server logged and keys it reported, collected from its threads.
final class ServerRecorder: Sendable {
    let lines = Locked<[String]>([])
    let keys = Locked<[(UInt32, Bool)]>([])

    var log: @Sendable (String) -> Void { { line in self.lines.withLock { $0.append(line) } } }
    var keyEvent: @Sendable (UInt32, Bool) -> Void { { keysym, down in self.keys.withLock { $0.append((keysym, down)) } } }

    /// Waits (at most 10 s, a hang guard) until `condition` holds.
    func wait(until condition: (ServerRecorder) -> Bool) -> Bool {
        for _ in 0..<1000 {
            if condition(self) { return true }
            usleep(10_000)
        }
        return false
    }
}

/// A display file, a server on a free loopback port showing it, and viewers connected to it.
final class VNCServerFixture {
    let directory = TemporaryDirectory()
    let file: DisplayFile
    let recorder = ServerRecorder()
    let server: VNCServer

    init(password: String? = nil, width: Int = 200, height: Int = 150) throws {
        file = try DisplayFile(in: directory, width: width, height: height)
        server = try VNCServer(
            view: try FramebufferView(path: file.path), host: "127.0.0.1", port: 0, password: password.map { Array($0.utf8) },
            keyEvent: recorder.keyEvent, log: recorder.log)
        try server.start()
    }

    deinit { server.stop() }

    func client() throws -> RFBTestClient { try RFBTestClient(port: server.boundPort) }

    /// A client past the handshake.
    func viewer(password: String? = nil) throws -> RFBTestClient {
        let client = try client()
        try client.handshake(password: password)
        return client
    }

    /// The file's pixels of `area` as `client` should see them.
    func expected(_ area: ScreenRectangle, for client: RFBTestClient) -> [UInt32] {
        file.pixels(x: area.x, y: area.y, width: area.width, height: area.height).map(client.expected)
    }

    /// Reads one update and checks every rectangle against the file; returns the rectangles.
    @discardableResult
    func expectUpdateMatchesFile(_ client: RFBTestClient, encoding: Int32, sourceLocation: SourceLocation = #_sourceLocation) throws -> [ScreenRectangle] {
        let rectangles = try client.readUpdate()
        for rectangle in rectangles {
            #expect(rectangle.encoding == encoding, sourceLocation: sourceLocation)
            #expect(rectangle.pixels == expected(rectangle.area, for: client), "pixels of \(rectangle.area)", sourceLocation: sourceLocation)
        }
        return rectangles.map(\.area)
    }

    /// After the file changed inside `changedTiles` (while an incremental request for the
    /// whole screen is held): reads updates, asking again after each, until `client`'s screen
    /// equals the file. Every rectangle must lie within the changed tiles. (The server may catch
    /// a change half made, as it may a guest's, so one update need not carry all of it.)
    func expectConvergence(_ client: RFBTestClient, encoding: Int32, changedTiles: [ScreenRectangle],
                           sourceLocation: SourceLocation = #_sourceLocation) throws {
        let target = file.pixels.map(client.expected)
        for _ in 0..<100 {
            for rectangle in try client.readUpdate() {
                #expect(rectangle.encoding == encoding, sourceLocation: sourceLocation)
                #expect(changedTiles.contains(rectangle.area), "\(rectangle.area) is not a changed tile run", sourceLocation: sourceLocation)
            }
            if client.screen == target { return }
            try client.requestUpdate(incremental: true, width: file.width, height: file.height)
        }
        Issue.record("the screen never matched the file", sourceLocation: sourceLocation)
    }

    /// True when `rectangles` cover `area` exactly (no gaps, no overlaps).
    static func cover(_ rectangles: [ScreenRectangle], exactly area: ScreenRectangle) -> Bool {
        var covered = [Int](repeating: 0, count: area.width * area.height)
        for rectangle in rectangles {
            guard area.contains(rectangle) else { return false }
            for y in rectangle.y..<rectangle.maxY {
                for x in rectangle.x..<rectangle.maxX { covered[(y - area.y) * area.width + x - area.x] += 1 }
            }
        }
        return covered.allSatisfy { $0 == 1 }
    }
}

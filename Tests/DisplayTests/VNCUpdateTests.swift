import Display
import Glibc
import Testing

/// Framebuffer updates: full, incremental, in every pixel format and both encodings.
@Suite struct VNCUpdateTests {
    static let screen = ScreenRectangle(x: 0, y: 0, width: 200, height: 150)

    static let formats: [(String, PixelFormat)] = [
        ("native", .native),
        // What vncdotool asks for: red in the low byte.
        ("32 bpp BGR", PixelFormat(bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
                                   redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16)),
        ("32 bpp big-endian, colour in the high bytes", PixelFormat(bitsPerPixel: 32, depth: 24, bigEndian: true, trueColour: true,
                                   redMax: 255, greenMax: 255, blueMax: 255, redShift: 24, greenShift: 16, blueShift: 8)),
        ("32 bpp depth 32 (full CPIXELs)", PixelFormat(bitsPerPixel: 32, depth: 32, bigEndian: false, trueColour: true,
                                   redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0)),
        ("RGB565", PixelFormat(bitsPerPixel: 16, depth: 16, bigEndian: false, trueColour: true,
                               redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0)),
        ("RGB555 big-endian", PixelFormat(bitsPerPixel: 16, depth: 15, bigEndian: true, trueColour: true,
                                          redMax: 31, greenMax: 31, blueMax: 31, redShift: 10, greenShift: 5, blueShift: 0)),
        ("BGR233", PixelFormat(bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true,
                               redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6)),
    ]

    @Test(arguments: [Int32(0), 16], 0..<formats.count)
    func fullUpdateEqualsTheFile(encoding: Int32, formatIndex: Int) throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        let (name, format) = Self.formats[formatIndex]
        if format != .native { try client.setPixelFormat(format) }
        try client.setEncodings(encoding == 16 ? [-223, 16, 0] : [0])
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        let areas = try fixture.expectUpdateMatchesFile(client, encoding: encoding)
        #expect(VNCServerFixture.cover(areas, exactly: Self.screen), "\(name)")
        // A second one goes through the same zlib stream.
        try client.requestUpdate(incremental: false, x: 30, y: 40, width: 150, height: 100)
        let part = try fixture.expectUpdateMatchesFile(client, encoding: encoding)
        #expect(VNCServerFixture.cover(part, exactly: ScreenRectangle(x: 30, y: 40, width: 150, height: 100)), "\(name)")
    }

    @Test func requestsAreClippedToTheScreen() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.requestUpdate(incremental: false, x: 180, y: 100, width: 1000, height: 1000)
        let areas = try fixture.expectUpdateMatchesFile(client, encoding: 0)
        #expect(VNCServerFixture.cover(areas, exactly: ScreenRectangle(x: 180, y: 100, width: 20, height: 50)))
        try client.requestUpdate(incremental: false, x: 500, y: 500, width: 10, height: 10)
        #expect(try client.readUpdate().isEmpty)
    }

    @Test(arguments: [Int32(0), 16])
    func incrementalUpdateCarriesOnlyTheChangedTiles(encoding: Int32) throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.setEncodings([encoding])
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        try fixture.expectUpdateMatchesFile(client, encoding: encoding)

        try client.requestUpdate(incremental: true, width: 200, height: 150)
        // Tiles (1,1) and (2,1) change: one merged rectangle; (3,2), cut by the screen's corner, another.
        fixture.file.fill(x: 100, y: 70, width: 40, height: 5, colour: 0x00AB_CDEF)
        fixture.file.fill(x: 195, y: 140, width: 5, height: 10, colour: 0x0000_1234)
        let changed = [ScreenRectangle(x: 64, y: 64, width: 128, height: 64), ScreenRectangle(x: 192, y: 128, width: 8, height: 22),
                       // The poller may scan between the two fills and see one run at a time.
                       ScreenRectangle(x: 64, y: 64, width: 64, height: 64), ScreenRectangle(x: 128, y: 64, width: 64, height: 64)]
        try fixture.expectConvergence(client, encoding: encoding, changedTiles: changed)
    }

    @Test func anIncrementalRequestWaitsForAChange() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        try fixture.expectUpdateMatchesFile(client, encoding: 0)
        // Nothing changed: the incremental request is held, so the answer to the later
        // non-incremental one comes first.
        try client.requestUpdate(incremental: true, width: 200, height: 150)
        try client.requestUpdate(incremental: false, x: 5, y: 5, width: 2, height: 2)
        #expect(try fixture.expectUpdateMatchesFile(client, encoding: 0) == [ScreenRectangle(x: 5, y: 5, width: 2, height: 2)])
        // Then a change answers the held one.
        fixture.file.fill(x: 0, y: 0, width: 1, height: 1, colour: 0x00FF_FFFF)
        try fixture.expectConvergence(client, encoding: 0, changedTiles: [ScreenRectangle(x: 0, y: 0, width: 64, height: 64)])
    }

    @Test func aChangeOutsideTheRequestWaitsUntilItIsAskedFor() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        try fixture.expectUpdateMatchesFile(client, encoding: 0)
        fixture.file.fill(x: 150, y: 100, width: 4, height: 4, colour: 0x0055_5555)  // tile (2,1)
        try client.requestUpdate(incremental: true, x: 0, y: 0, width: 64, height: 64)
        // The held request for tile (0,0) is not answered by the change in (2,1); a change in (0,0) answers it.
        fixture.file.fill(x: 1, y: 1, width: 2, height: 2, colour: 0x0066_6666)
        let corner = ScreenRectangle(x: 0, y: 0, width: 64, height: 64)
        while client.screen[2 * 200 + 2] != client.expected(0x0066_6666) {
            for rectangle in try client.readUpdate() { #expect(rectangle.area == corner) }
            try client.requestUpdate(incremental: true, x: 0, y: 0, width: 64, height: 64)
        }
        // Tile (2,1) is still owed, and comes with the next request that covers it (which
        // replaces the one for (0,0) still held).
        try client.requestUpdate(incremental: true, width: 200, height: 150)
        try fixture.expectConvergence(client, encoding: 0, changedTiles: [corner, ScreenRectangle(x: 128, y: 64, width: 64, height: 64)])
    }

    @Test func twoViewersBothSeeAChange() throws {
        let fixture = try VNCServerFixture()
        let first = try fixture.viewer(), second = try fixture.viewer()
        try second.setEncodings([16])
        for client in [first, second] {
            try client.requestUpdate(incremental: false, width: 200, height: 150)
            _ = try client.readUpdate()
            try client.requestUpdate(incremental: true, width: 200, height: 150)
        }
        fixture.file.fill(x: 10, y: 10, width: 20, height: 20, colour: 0x0012_3456)
        for (client, encoding) in [(first, Int32(0)), (second, 16)] {
            try fixture.expectConvergence(client, encoding: encoding, changedTiles: [ScreenRectangle(x: 0, y: 0, width: 64, height: 64)])
        }
        #expect(fixture.recorder.wait { _ in fixture.server.statistics.updates >= 4 })
        #expect(fixture.server.statistics.connections == 2)
    }

    @Test func statisticsCountWhatViewersReceived() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.viewer()
        try client.requestUpdate(incremental: false, width: 200, height: 150)
        _ = try client.readUpdate()
        // The server counts an update after its last write returns, which may be after the read.
        #expect(fixture.recorder.wait { _ in fixture.server.statistics.updates == 1 })
        let statistics = fixture.server.statistics
        #expect(statistics.connections == 1 && statistics.rectangles == 3)
        #expect(statistics.bytesSent > 200 * 150 * 4)
    }
}

import LinuxSystem
import Display
import Testing

/// ZRLE tiles, encoded by the server's encoder and decoded by the test client's decoder.
@Suite struct ZRLETests {
    /// Encodes one tile into a fresh zlib stream the way a rectangle is sent, then decodes it.
    static func roundTrip(_ pixels: [UInt32], width: Int, height: Int, format: PixelFormat = .native) throws -> (subencoding: UInt8, decoded: [UInt32]) {
        var plain: [UInt8] = []
        ZRLEEncoder.appendTile(pixels, width: width, height: height, converter: PixelConverter(format: format), to: &plain)
        let deflater = try DeflateStream(level: 1)
        var compressed: [UInt8] = []
        try deflater.compress(plain, flush: .sync, into: &compressed)
        let decoded = try TileDecoder(format: format).decode(compressed, width: width, height: height)
        return (plain[0], decoded)
    }

    /// The test client's ZRLE decoder without a socket.
    struct TileDecoder {
        let format: PixelFormat
        func decode(_ compressed: [UInt8], width: Int, height: Int) throws -> [UInt32] {
            let client = try RFBTestClient.detached(format: format)
            return try client.decodeZRLE(compressed, area: ScreenRectangle(x: 0, y: 0, width: width, height: height))
        }
    }

    static func expected(_ pixels: [UInt32], _ format: PixelFormat) throws -> [UInt32] {
        let client = try RFBTestClient.detached(format: format)
        return pixels.map(client.expected)
    }

    @Test func uniformTileIsSolid() throws {
        let pixels = [UInt32](repeating: 0x0012_3456, count: 64 * 64)
        let (subencoding, decoded) = try Self.roundTrip(pixels, width: 64, height: 64)
        #expect(subencoding == 1)
        #expect(decoded == pixels)
    }

    @Test func twoColourTextTileIsPackedOneBitAPixel() throws {
        let pixels = (0..<(64 * 64)).map { ($0 * 7 / 3) % 5 == 0 ? UInt32(0x00FF_FFFF) : 0x0000_0000 }
        var plain: [UInt8] = []
        ZRLEEncoder.appendTile(pixels, width: 64, height: 64, converter: PixelConverter(format: .native), to: &plain)
        // Subencoding, two 3-byte CPIXELs, 64 rows of 8 bytes.
        #expect(plain.count == 1 + 2 * 3 + 64 * 8)
        let (subencoding, decoded) = try Self.roundTrip(pixels, width: 64, height: 64)
        #expect(subencoding == 2)
        #expect(decoded == pixels)
    }

    @Test(arguments: [3, 4, 5, 16])
    func fewColoursArePacked(colours: Int) throws {
        // An odd-sized tile: rows end inside a byte.
        let pixels = (0..<(13 * 7)).map { UInt32(($0 * 7) % colours) * 0x0011_0503 }
        let (subencoding, decoded) = try Self.roundTrip(pixels, width: 13, height: 7)
        #expect(Int(subencoding) == colours)
        #expect(decoded == pixels)
    }

    @Test func manyColoursAreRaw() throws {
        let pixels = (0..<(64 * 50)).map { UInt32($0) &* 2_654_435_761 & 0x00FF_FFFF }
        let (subencoding, decoded) = try Self.roundTrip(pixels, width: 64, height: 50)
        #expect(subencoding == 0)
        #expect(decoded == pixels)
    }

    @Test func seventeenColoursAreRaw() throws {
        let pixels = (0..<(16 * 16)).map { UInt32($0 % 17) }
        #expect(try Self.roundTrip(pixels, width: 16, height: 16).subencoding == 0)
    }

    @Test(arguments: [
        PixelFormat(bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true,
                    redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0),
        PixelFormat(bitsPerPixel: 32, depth: 24, bigEndian: true, trueColour: true,
                    redMax: 255, greenMax: 255, blueMax: 255, redShift: 24, greenShift: 16, blueShift: 8),
        PixelFormat(bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: true,
                    redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6),
    ])
    func otherFormatsRoundTrip(format: PixelFormat) throws {
        let solid = [UInt32](repeating: 0x0080_4020, count: 30 * 20)
        let twoColours: [UInt32] = (0..<(30 * 20)).map { index in index % 3 == 0 ? 0x00FF_0000 : 0x0000_FF00 }
        let manyColours: [UInt32] = (0..<(30 * 20)).map { index in UInt32(index) &* 40503 & 0x00FF_FFFF }
        for pixels in [solid, twoColours, manyColours] {
            let (_, decoded) = try Self.roundTrip(pixels, width: 30, height: 20, format: format)
            #expect(decoded == (try Self.expected(pixels, format)))
        }
    }

    @Test func compactPixelsOnlyWhereTheRFCAllowsThem() {
        #expect(PixelConverter(format: .native).bytesPerCPixel == 3)
        var deep = PixelFormat.native
        deep.depth = 32
        #expect(PixelConverter(format: deep).bytesPerCPixel == 4)
        var wide = PixelFormat.native
        wide.redShift = 20  // colour bits spread over all four bytes
        #expect(PixelConverter(format: wide).bytesPerCPixel == 4)
        var sixteen = PixelFormat.native
        sixteen.bitsPerPixel = 16
        sixteen.depth = 16
        sixteen.redMax = 31
        sixteen.greenMax = 63
        sixteen.blueMax = 31
        sixteen.redShift = 11
        sixteen.greenShift = 5
        #expect(PixelConverter(format: sixteen).bytesPerCPixel == 2)
    }
}

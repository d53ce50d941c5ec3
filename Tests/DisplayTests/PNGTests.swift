import LinuxSystem
import Display
import Foundation
import Testing
import TestSupport

/// Screenshots decoded by a small PNG reader: chunk CRCs, zlib, filters, and every pixel.
@Suite struct PNGTests {
    let directory = TemporaryDirectory()

    struct DecodedPNG {
        var width = 0, height = 0
        var chunkTypes: [String] = []
        var rgb: [UInt8] = []
    }

    static func u32(_ bytes: [UInt8], _ at: Int) -> Int {
        Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
    }

    /// Parses the chunks, checks each CRC, inflates IDAT and undoes the row filters.
    static func decode(_ png: [UInt8]) throws -> DecodedPNG {
        #expect(Array(png[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var decoded = DecodedPNG()
        var offset = 8, idat: [UInt8] = []
        while offset < png.count {
            let length = u32(png, offset)
            let type = String(decoding: png[(offset + 4)..<(offset + 8)], as: UTF8.self)
            let data = Array(png[(offset + 8)..<(offset + 8 + length)])
            #expect(UInt32(u32(png, offset + 8 + length)) == CRC32.checksum(Array(png[(offset + 4)..<(offset + 8 + length)])), "CRC of \(type)")
            decoded.chunkTypes.append(type)
            switch type {
            case "IHDR":
                decoded.width = u32(data, 0)
                decoded.height = u32(data, 4)
                #expect(Array(data[8...]) == [8, 2, 0, 0, 0])
            case "IDAT": idat += data
            default: break
            }
            offset += 12 + length
        }
        let rowBytes = decoded.width * 3
        let filtered = try Inflater.uncompress(idat, expectedBytes: decoded.height * (rowBytes + 1))
        #expect(filtered.count == decoded.height * (rowBytes + 1))
        var previous = [UInt8](repeating: 0, count: rowBytes)
        for y in 0..<decoded.height {
            let filter = filtered[y * (rowBytes + 1)]
            var row = Array(filtered[(y * (rowBytes + 1) + 1)..<((y + 1) * (rowBytes + 1))])
            for x in 0..<rowBytes {
                let left = x >= 3 ? Int(row[x - 3]) : 0, up = Int(previous[x]), upLeft = x >= 3 ? Int(previous[x - 3]) : 0
                let predictor: Int
                switch filter {
                case 0: predictor = 0
                case 1: predictor = left
                case 2: predictor = up
                case 3: predictor = (left + up) / 2
                case 4:
                    let estimate = left + up - upLeft
                    let (a, b, c) = (abs(estimate - left), abs(estimate - up), abs(estimate - upLeft))
                    predictor = a <= b && a <= c ? left : b <= c ? up : upLeft
                default:
                    Issue.record("unknown filter \(filter)")
                    predictor = 0
                }
                row[x] = row[x] &+ UInt8(truncatingIfNeeded: predictor)
            }
            decoded.rgb += row
            previous = row
        }
        return decoded
    }

    static func rgb(_ pixels: [UInt32]) -> [UInt8] {
        pixels.flatMap { [UInt8(truncatingIfNeeded: $0 >> 16), UInt8(truncatingIfNeeded: $0 >> 8), UInt8(truncatingIfNeeded: $0)] }
    }

    @Test func screenshotDecodesToTheFilesPixels() throws {
        let file = try DisplayFile(in: directory)
        let decoded = try Self.decode(try PNGEncoder.encode(try FramebufferView(path: file.path)))
        #expect(decoded.width == 200 && decoded.height == 150)
        #expect(decoded.chunkTypes.first == "IHDR" && decoded.chunkTypes.last == "IEND" && decoded.chunkTypes.contains("IDAT"))
        #expect(decoded.rgb == Self.rgb(file.pixels))
    }

    @Test func largeImagesSpanSeveralIDATChunks() throws {
        var generator = SystemRandomNumberGenerator()
        let pixels = (0..<(600 * 700)).map { _ in UInt32.random(in: 0...0xFF_FFFF, using: &generator) }
        let png = try PNGEncoder.encode(width: 600, height: 700) { y in Array(pixels[(y * 600)..<((y + 1) * 600)]) }
        let decoded = try Self.decode(png)
        #expect(decoded.chunkTypes.filter { $0 == "IDAT" }.count > 1)
        #expect(decoded.rgb == Self.rgb(pixels))
    }

    @Test func writesAPrivateFileAtomically() throws {
        let file = try DisplayFile(in: directory)
        let view = try FramebufferView(path: file.path)
        let output = directory.path("shot.png")
        _ = FileManager.default.createFile(atPath: output, contents: Data("old".utf8))
        try PNGEncoder.write(view, to: output)
        let attributes = try FileManager.default.attributesOfItem(atPath: output)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let decoded = try Self.decode(Array(try Data(contentsOf: URL(fileURLWithPath: output))))
        #expect(decoded.rgb == Self.rgb(file.pixels))
        // Nothing is left behind beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).sorted() == ["display.fb", "shot.png"])
    }

    @Test func aWriteThatCannotHappenSaysWhere() throws {
        let file = try DisplayFile(in: directory)
        let view = try FramebufferView(path: file.path)
        let output = directory.path("no-such-dir/shot.png")
        #expect {
            try PNGEncoder.write(view, to: output)
        } throws: { error in
            "\(error)".contains(output) && "\(error)".contains("No such file")
        }
    }
}

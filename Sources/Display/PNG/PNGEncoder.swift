import LinuxSystem
/// Screenshots as PNG: 8-bit RGB (colour type 2), no interlace, one zlib stream in IDAT chunks.
///
/// Each row is filtered with Sub (type 1: each byte minus the one three bytes left), which
/// turns the flat areas of a console or desktop into runs of zeros that deflate well.
package enum PNGEncoder {
    private static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// The largest IDAT chunk written; longer image data goes into several.
    private static let idatChunkBytes = 1 << 20

    /// The PNG of the display's pixels as they are now.
    package static func encode(_ view: FramebufferView) throws(DisplayError) -> [UInt8] {
        var row: [UInt32] = []
        return try encode(width: view.width, height: view.height) { y in
            view.copyPixels(x: 0, y: y, width: view.width, height: 1, into: &row)
            return row
        }
    }

    /// The PNG of `width` × `height` pixels given row by row as `0x00RRGGBB` words.
    package static func encode(width: Int, height: Int, row: (Int) -> [UInt32]) throws(DisplayError) -> [UInt8] {
        var png = signature
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
        header += [8, 2, 0, 0, 0]
        appendChunk("IHDR", header, to: &png)

        let deflater: DeflateStream
        do { deflater = try DeflateStream(level: 6) } catch { throw DisplayError(error) }
        var filtered = [UInt8](repeating: 0, count: 1 + width * 3)
        var compressed: [UInt8] = []
        for y in 0..<height {
            let pixels = row(y)
            precondition(pixels.count == width, "row \(y) has \(pixels.count) pixels; expected \(width)")
            filtered[0] = 1  // Sub
            var previous: (UInt8, UInt8, UInt8) = (0, 0, 0)
            for x in 0..<width {
                let pixel = pixels[x]
                let red = UInt8(truncatingIfNeeded: pixel >> 16), green = UInt8(truncatingIfNeeded: pixel >> 8)
                let blue = UInt8(truncatingIfNeeded: pixel)
                filtered[1 + x * 3] = red &- previous.0
                filtered[2 + x * 3] = green &- previous.1
                filtered[3 + x * 3] = blue &- previous.2
                previous = (red, green, blue)
            }
            do { try deflater.compress(filtered, flush: y == height - 1 ? .finish : .none, into: &compressed) } catch { throw DisplayError(error) }
            while compressed.count >= idatChunkBytes {
                appendChunk("IDAT", compressed[..<idatChunkBytes], to: &png)
                compressed.removeFirst(idatChunkBytes)
            }
        }
        if height == 0 {
            do { try deflater.compress([], flush: .finish, into: &compressed) } catch { throw DisplayError(error) }
        }
        if !compressed.isEmpty { appendChunk("IDAT", compressed[...], to: &png) }
        appendChunk("IEND", [], to: &png)
        return png
    }

    /// Writes the display's pixels as a PNG file at `path` (mode 0600), atomically: readers see
    /// the old file or the whole new one.
    package static func write(_ view: FramebufferView, to path: String) throws(DisplayError) {
        let png = try encode(view)
        do { try AtomicFile.write(png, to: path) } catch { throw .fileWrite(path: path, step: error.call, error.errno) }
    }

    /// Appends a chunk: length, type, data, CRC of type and data.
    private static func appendChunk(_ type: String, _ data: ArraySlice<UInt8>, to png: inout [UInt8]) {
        png.appendBigEndian(UInt32(data.count))
        let start = png.count
        png += Array(type.utf8)
        png += data
        png.appendBigEndian(CRC32.update(0, png[start...]))
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to png: inout [UInt8]) {
        appendChunk(type, data[...], to: &png)
    }
}

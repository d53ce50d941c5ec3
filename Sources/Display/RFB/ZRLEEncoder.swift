import LinuxSystem
/// ZRLE encoding (RFC 6143 §7.7.6): the rectangle is cut into 64 × 64 tiles, left to right and
/// top to bottom; each tile is written as one colour (solid), a palette of 2–16 colours with
/// packed indices, or raw CPIXELs, and the whole is compressed with the connection's one zlib
/// stream, flushed at the end of each rectangle and sent after its u32 length.
///
/// Text consoles are mostly 2-colour tiles: 1 bit a pixel before zlib even starts.
package final class ZRLEEncoder {
    package static let tileSize = 64

    private let deflater: DeflateStream
    private var plain: [UInt8] = []
    private var compressed: [UInt8] = []
    private var tile: [UInt32] = []

    /// An encoder with a fresh zlib stream: one per connection, since the client's inflate
    /// stream follows this one from the first rectangle to the last.
    package init() throws(DisplayError) {
        do { deflater = try DeflateStream(level: 1) } catch { throw DisplayError(error) }
    }

    /// Appends `area` of `view` (u32 length, then zlib data) to `output`.
    package func append(_ area: ScreenRectangle, of view: FramebufferView, converter: PixelConverter, to output: inout [UInt8]) throws(DisplayError) {
        plain.removeAll(keepingCapacity: true)
        var y = area.y
        while y < area.maxY {
            let height = min(Self.tileSize, area.maxY - y)
            var x = area.x
            while x < area.maxX {
                let width = min(Self.tileSize, area.maxX - x)
                view.copyPixels(x: x, y: y, width: width, height: height, into: &tile)
                Self.appendTile(tile, width: width, height: height, converter: converter, to: &plain)
                x += width
            }
            y += height
        }
        compressed.removeAll(keepingCapacity: true)
        do { try deflater.compress(plain, flush: .sync, into: &compressed) } catch { throw DisplayError(error) }
        output.appendBigEndian(UInt32(compressed.count))
        output += compressed
    }

    /// Appends one tile's uncompressed ZRLE form: a subencoding byte, then its data.
    /// `pixels` holds `width` × `height` `0x00RRGGBB` words row after row.
    package static func appendTile(_ pixels: [UInt32], width: Int, height: Int, converter: PixelConverter, to output: inout [UInt8]) {
        precondition(pixels.count == width * height && width > 0 && height > 0, "a tile of \(width)x\(height) needs that many pixels")
        var palette: [UInt32] = []
        palette.reserveCapacity(16)
        // Up to 16 colours in order of appearance; indices are only computed once that fits.
        var last = pixels[0]
        palette.append(last)
        for pixel in pixels where pixel != last {
            last = pixel
            if !palette.contains(pixel) {
                guard palette.count < 16 else { return appendRaw(pixels, converter: converter, to: &output) }
                palette.append(pixel)
            }
        }
        if palette.count == 1 {
            output.append(1)  // solid
            converter.appendCPixel(palette[0], to: &output)
            return
        }
        let bitsPerIndex = palette.count == 2 ? 1 : palette.count <= 4 ? 2 : 4
        let packedBytes = height * ((width * bitsPerIndex + 7) / 8)
        guard palette.count * converter.bytesPerCPixel + packedBytes < pixels.count * converter.bytesPerCPixel else {
            return appendRaw(pixels, converter: converter, to: &output)
        }
        output.append(UInt8(palette.count))  // packed palette
        for colour in palette { converter.appendCPixel(colour, to: &output) }
        // Indices packed most significant bit first; each row starts on a byte boundary.
        var lastPixel = palette[0], lastIndex: UInt8 = 0
        for row in 0..<height {
            var byte: UInt8 = 0, filled = 0
            for pixel in pixels[(row * width)..<((row + 1) * width)] {
                if pixel != lastPixel {
                    lastPixel = pixel
                    lastIndex = UInt8(palette.firstIndex(of: pixel) ?? 0)
                }
                byte = byte << UInt8(bitsPerIndex) | lastIndex
                filled += bitsPerIndex
                if filled == 8 {
                    output.append(byte)
                    byte = 0
                    filled = 0
                }
            }
            if filled > 0 { output.append(byte << UInt8(8 - filled)) }
        }
    }

    private static func appendRaw(_ pixels: [UInt32], converter: PixelConverter, to output: inout [UInt8]) {
        output.append(0)  // raw
        for pixel in pixels { converter.appendCPixel(pixel, to: &output) }
    }
}

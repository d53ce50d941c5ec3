/// Raw encoding (RFC 6143 §7.7.1): a rectangle's pixels row after row in the client's format.
/// Every client supports it; Engram uses it when a client offers nothing better.
package struct RawEncoder {
    private var row: [UInt32] = []

    package init() {}

    /// Appends the pixels of `area` of `view` to `output`.
    package mutating func append(_ area: ScreenRectangle, of view: FramebufferView, converter: PixelConverter, to output: inout [UInt8]) {
        output.reserveCapacity(output.count + area.width * area.height * converter.bytesPerPixel)
        for y in area.y..<area.maxY {
            view.copyPixels(x: area.x, y: y, width: area.width, height: 1, into: &row)
            for pixel in row { converter.appendPixel(pixel, to: &output) }
        }
    }
}

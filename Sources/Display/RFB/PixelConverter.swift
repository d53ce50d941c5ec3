/// Turns framebuffer pixels (`0x00RRGGBB`) into a client's pixel format, as PIXELs (Raw) or
/// CPIXELs (ZRLE's compressed pixels).
///
/// Each colour component goes through a 256-entry table that scales it to the client's maximum
/// and shifts it into place, so any true-colour format costs three loads and two ORs a pixel.
package struct PixelConverter: Sendable {
    package let format: PixelFormat
    /// Bytes of a PIXEL: 1, 2 or 4.
    package let bytesPerPixel: Int
    /// Bytes of a CPIXEL: 3 when a 32-bit pixel's colour fits in three of its bytes, else a PIXEL's.
    package let bytesPerCPixel: Int
    /// Which byte of the 4-byte wire PIXEL a 3-byte CPIXEL starts at.
    private let compactOffset: Int
    private let red: [UInt32]
    private let green: [UInt32]
    private let blue: [UInt32]

    /// A converter for a format `unsupportedReason` accepted.
    package init(format: PixelFormat) {
        precondition(format.unsupportedReason == nil, "unsupported pixel format \(format)")
        self.format = format
        bytesPerPixel = Int(format.bitsPerPixel) / 8
        func table(max: UInt16, shift: UInt8) -> [UInt32] {
            (0..<256).map { value in ((UInt32(value) * UInt32(max) + 127) / 255) << UInt32(shift) }
        }
        red = table(max: format.redMax, shift: format.redShift)
        green = table(max: format.greenMax, shift: format.greenShift)
        blue = table(max: format.blueMax, shift: format.blueShift)
        // RFC 6143 §7.7.6: with true colour, 32 bpp and depth ≤ 24, a CPIXEL is the three bytes
        // holding the colour bits, when all of them lie in the low three or the high three bytes.
        let used = red[255] | green[255] | blue[255]
        if format.bitsPerPixel == 32 && format.depth <= 24 && used & 0xFF00_0000 == 0 {
            bytesPerCPixel = 3
            compactOffset = format.bigEndian ? 1 : 0
        } else if format.bitsPerPixel == 32 && format.depth <= 24 && used & 0x0000_00FF == 0 {
            bytesPerCPixel = 3
            compactOffset = format.bigEndian ? 0 : 1
        } else {
            bytesPerCPixel = bytesPerPixel
            compactOffset = 0
        }
    }

    /// The client's pixel value for `pixel` (`0x00RRGGBB`).
    @inline(__always)
    package func value(_ pixel: UInt32) -> UInt32 {
        red[Int(pixel >> 16 & 0xFF)] | green[Int(pixel >> 8 & 0xFF)] | blue[Int(pixel & 0xFF)]
    }

    /// Appends `pixel` as a PIXEL in the client's byte order.
    @inline(__always)
    package func appendPixel(_ pixel: UInt32, to output: inout [UInt8]) {
        append(value(pixel), bytes: bytesPerPixel, skipping: 0, to: &output)
    }

    /// Appends `pixel` as a CPIXEL.
    @inline(__always)
    package func appendCPixel(_ pixel: UInt32, to output: inout [UInt8]) {
        append(value(pixel), bytes: bytesPerCPixel, skipping: compactOffset, to: &output)
    }

    /// Appends the `count` bytes from `skipping` of the `bytesPerPixel`-byte wire form of `value`.
    @inline(__always)
    private func append(_ value: UInt32, bytes count: Int, skipping first: Int, to output: inout [UInt8]) {
        for index in first..<(first + count) {
            let significance = format.bigEndian ? bytesPerPixel - 1 - index : index
            output.append(UInt8(truncatingIfNeeded: value >> UInt32(8 * significance)))
        }
    }
}

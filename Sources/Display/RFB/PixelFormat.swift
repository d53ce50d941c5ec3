/// RFB's PIXEL_FORMAT (RFC 6143 §7.4): how a client wants pixels laid out on the wire.
package struct PixelFormat: Sendable, Equatable, CustomStringConvertible {
    package var bitsPerPixel: UInt8
    package var depth: UInt8
    package var bigEndian: Bool
    package var trueColour: Bool
    package var redMax: UInt16
    package var greenMax: UInt16
    package var blueMax: UInt16
    package var redShift: UInt8
    package var greenShift: UInt8
    package var blueShift: UInt8

    package init(bitsPerPixel: UInt8, depth: UInt8, bigEndian: Bool, trueColour: Bool,
                 redMax: UInt16, greenMax: UInt16, blueMax: UInt16, redShift: UInt8, greenShift: UInt8, blueShift: UInt8) {
        self.bitsPerPixel = bitsPerPixel
        self.depth = depth
        self.bigEndian = bigEndian
        self.trueColour = trueColour
        self.redMax = redMax
        self.greenMax = greenMax
        self.blueMax = blueMax
        self.redShift = redShift
        self.greenShift = greenShift
        self.blueShift = blueShift
    }

    /// The framebuffer's own format, announced in ServerInit: XRGB8888 as a little-endian word.
    package static let native = PixelFormat(
        bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true,
        redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0)

    package static let encodedBytes = 16

    /// Reads the 16 bytes of a PIXEL_FORMAT (the last three are padding).
    package init(decoding bytes: [UInt8]) {
        precondition(bytes.count == Self.encodedBytes, "a PIXEL_FORMAT is 16 bytes")
        func u16(_ at: Int) -> UInt16 { UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]) }
        self.init(bitsPerPixel: bytes[0], depth: bytes[1], bigEndian: bytes[2] != 0, trueColour: bytes[3] != 0,
                  redMax: u16(4), greenMax: u16(6), blueMax: u16(8), redShift: bytes[10], greenShift: bytes[11], blueShift: bytes[12])
    }

    package var encoded: [UInt8] {
        var bytes: [UInt8] = [bitsPerPixel, depth, bigEndian ? 1 : 0, trueColour ? 1 : 0]
        bytes.appendBigEndian(redMax)
        bytes.appendBigEndian(greenMax)
        bytes.appendBigEndian(blueMax)
        bytes += [redShift, greenShift, blueShift, 0, 0, 0]
        return bytes
    }

    /// Nil when Engram can send pixels in this format, else why not (one line).
    package var unsupportedReason: String? {
        guard trueColour else { return "colour-map pixel formats are not supported (expected true colour)" }
        guard [8, 16, 32].contains(bitsPerPixel) else { return "\(bitsPerPixel) bits per pixel is not supported (expected 8, 16 or 32)" }
        for shift in [redShift, greenShift, blueShift] where shift >= bitsPerPixel {
            return "a colour shift of \(shift) does not fit \(bitsPerPixel)-bit pixels"
        }
        return nil
    }

    package var description: String {
        "\(bitsPerPixel) bpp depth \(depth) \(bigEndian ? "big" : "little")-endian max \(redMax)/\(greenMax)/\(blueMax) shift \(redShift)/\(greenShift)/\(blueShift)"
    }
}

/// The shape of a linear framebuffer: size in pixels, bytes per row, and pixel format.
///
/// The only format is XRGB8888: 32 bits per pixel, a little-endian word `0x00RRGGBB` (bytes B, G,
/// R, unused), what Linux's simple framebuffer calls `x8r8g8b8` and VESA calls 32-bit direct colour.
package struct FramebufferGeometry: Sendable, Equatable {
    package static let bytesPerPixel = 4
    /// Limits on either side: at least 64 pixels, at most 8192.
    package static let dimensionRange: ClosedRange<Int> = 64...8192
    /// The pixel area may not exceed 256 MiB.
    package static let maximumPixelBytes = 256 << 20

    package let width: Int
    package let height: Int
    /// Bytes from the start of one row to the next: width × 4, rounded up to 64 bytes.
    package let stride: Int

    /// A geometry of `width` × `height` pixels, or a one-line reason it cannot be one.
    package static func make(width: Int, height: Int) -> Result<FramebufferGeometry, FramebufferFormatError> {
        guard dimensionRange.contains(width), dimensionRange.contains(height) else {
            return .failure(.badGeometry("display size \(width)x\(height) is outside \(dimensionRange.lowerBound)..\(dimensionRange.upperBound) on a side"))
        }
        let stride = (width * bytesPerPixel + 63) & ~63
        return .success(FramebufferGeometry(width: width, height: height, stride: stride))
    }

    /// Parses "WIDTHxHEIGHT", e.g. "1024x768".
    package static func parse(_ text: String) -> Result<FramebufferGeometry, FramebufferFormatError> {
        let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let width = Int(parts[0]), let height = Int(parts[1]) else {
            return .failure(.badGeometry("display size \"\(text)\" is not WIDTHxHEIGHT, e.g. 1024x768"))
        }
        return make(width: width, height: height)
    }

    init(width: Int, height: Int, stride: Int) {
        self.width = width
        self.height = height
        self.stride = stride
    }

    /// Bytes the pixels take (stride × height).
    package var pixelBytes: Int { stride * height }
    /// The pixel area as mapped into the guest: whole pages.
    package var pixelAreaBytes: Int { (pixelBytes + 4095) & ~4095 }
}

/// Why a framebuffer file or geometry was refused; `description` is the one-line message.
package enum FramebufferFormatError: Error, Equatable, CustomStringConvertible {
    case badGeometry(String)
    case badHeader(String)

    package var description: String {
        switch self {
        case .badGeometry(let message), .badHeader(let message): message
        }
    }
}

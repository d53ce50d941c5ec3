/// The first page of a display file: what a reader needs to show the pixels that follow it.
///
/// A display file is this 4096-byte header, then the pixel area (`FramebufferGeometry`) at offset
/// 4096. The guest sees only the pixel area; the header is the VMM's, written once at start. All
/// fields are little-endian:
///
/// | offset | field |
/// |---|---|
/// | 0 | magic `ENGRAMFB` |
/// | 8 | u32 version (1) |
/// | 12 | u32 header size (4096) |
/// | 16, 20 | u32 width, height in pixels |
/// | 24 | u32 stride: bytes per row |
/// | 28 | u32 pixel format: 1 = XRGB8888 |
/// | 32 | u64 offset of the pixels (4096) |
/// | 40 | u64 size of the pixel area (whole pages) |
/// | 48 | u64 guest-physical address of the pixels |
/// | 64 | 256 bytes: the VMM's control socket path, NUL-terminated; empty when it has none |
package struct FramebufferHeader: Sendable, Equatable {
    package static let magic = Array("ENGRAMFB".utf8)
    package static let version: UInt32 = 1
    package static let size = 4096
    package static let formatXRGB8888: UInt32 = 1
    package static let controlSocketOffset = 64
    package static let controlSocketCapacity = 256

    package var geometry: FramebufferGeometry
    package var guestAddress: UInt64
    /// Where keyboard input goes: the VMM's API socket, or "" for a view-only display.
    package var controlSocketPath: String

    package init(geometry: FramebufferGeometry, guestAddress: UInt64, controlSocketPath: String = "") {
        self.geometry = geometry
        self.guestAddress = guestAddress
        self.controlSocketPath = controlSocketPath
    }

    /// The size of a whole display file with this geometry.
    package var fileSize: Int { Self.size + geometry.pixelAreaBytes }

    /// The header page's bytes. A socket path longer than 255 bytes is left out (view-only).
    package var bytes: [UInt8] {
        var page = [UInt8](repeating: 0, count: Self.size)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for index in 0..<MemoryLayout<T>.size { page[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        page.replaceSubrange(0..<8, with: Self.magic)
        put(Self.version, at: 8)
        put(UInt32(Self.size), at: 12)
        put(UInt32(geometry.width), at: 16)
        put(UInt32(geometry.height), at: 20)
        put(UInt32(geometry.stride), at: 24)
        put(Self.formatXRGB8888, at: 28)
        put(UInt64(Self.size), at: 32)
        put(UInt64(geometry.pixelAreaBytes), at: 40)
        put(guestAddress, at: 48)
        let path = Array(controlSocketPath.utf8)
        if path.count < Self.controlSocketCapacity {
            page.replaceSubrange(Self.controlSocketOffset..<(Self.controlSocketOffset + path.count), with: path)
        }
        return page
    }

    /// Reads a header from the start of a display file of `fileSize` bytes; `name` names the file
    /// in messages.
    package static func decode(_ bytes: some Collection<UInt8>, fileSize: Int, name: String) -> Result<FramebufferHeader, FramebufferFormatError> {
        let page = Array(bytes.prefix(size))
        guard page.count == size, Array(page[0..<8]) == magic else {
            return .failure(.badHeader("\(name) is not an Engram display file (expected the magic ENGRAMFB in a 4096-byte header)"))
        }
        func word<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            var value: T = 0
            for index in (0..<MemoryLayout<T>.size).reversed() { value = value << 8 | T(page[offset + index]) }
            return value
        }
        let version = word(UInt32.self, at: 8)
        guard version == Self.version else {
            return .failure(.badHeader("\(name): display file version \(version); this Engram reads version \(Self.version)"))
        }
        guard word(UInt32.self, at: 12) == UInt32(size), word(UInt64.self, at: 32) == UInt64(size) else {
            return .failure(.badHeader("\(name): header and pixel offset must both be \(size) bytes"))
        }
        let format = word(UInt32.self, at: 28)
        guard format == formatXRGB8888 else {
            return .failure(.badHeader("\(name): pixel format \(format) is unknown (expected 1, XRGB8888)"))
        }
        let width = Int(word(UInt32.self, at: 16)), height = Int(word(UInt32.self, at: 20))
        let geometry: FramebufferGeometry
        switch FramebufferGeometry.make(width: width, height: height) {
        case .success(let made): geometry = made
        case .failure(let error): return .failure(.badHeader("\(name): \(error)"))
        }
        let stride = Int(word(UInt32.self, at: 24))
        guard stride == geometry.stride else {
            return .failure(.badHeader("\(name): stride \(stride) does not match width \(width) (expected \(geometry.stride))"))
        }
        let area = word(UInt64.self, at: 40)
        guard area == UInt64(geometry.pixelAreaBytes), fileSize >= geometry.pixelAreaBytes + size else {
            return .failure(.badHeader(
                "\(name): \(fileSize) bytes is too small for \(width)x\(height) (expected \(geometry.pixelAreaBytes + size))"))
        }
        let pathBytes = page[controlSocketOffset..<(controlSocketOffset + controlSocketCapacity)].prefix { $0 != 0 }
        let path = String(decoding: pathBytes, as: UTF8.self)
        return .success(FramebufferHeader(geometry: geometry, guestAddress: word(UInt64.self, at: 48), controlSocketPath: path))
    }
}

import Devices
import Foundation
import Glibc
import TestSupport

/// A display file written by the test, as a VMM would write it: the header, then pixels the
/// test changes with pwrite while a server maps the file. `pixels` mirrors what the file holds.
final class DisplayFile {
    let path: String
    let header: FramebufferHeader
    private(set) var pixels: [UInt32]
    private let fd: CInt

    var width: Int { header.geometry.width }
    var height: Int { header.geometry.height }

    /// A `width` × `height` file in `directory` filled with `DisplayFile.pattern`.
    init(in directory: TemporaryDirectory, name: String = "display.fb", width: Int = 200, height: Int = 150,
         controlSocketPath: String = "/run/engram/vm.sock") throws {
        let geometry = try FramebufferGeometry.make(width: width, height: height).get()
        header = FramebufferHeader(geometry: geometry, guestAddress: 0xFD00_0000, controlSocketPath: controlSocketPath)
        path = directory.path(name)
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno)!) }
        pixels = (0..<(width * height)).map { Self.pattern(x: $0 % width, y: $0 / width) }
        var file = header.bytes + [UInt8](repeating: 0, count: geometry.pixelAreaBytes)
        for y in 0..<height {
            for x in 0..<width {
                let value = pixels[y * width + x], offset = FramebufferHeader.size + y * geometry.stride + x * 4
                // The unused top byte is set, as a guest may: readers must ignore it.
                for byte in 0..<4 { file[offset + byte] = UInt8(truncatingIfNeeded: (value | 0xAB00_0000) >> (8 * UInt32(byte))) }
            }
        }
        precondition(pwrite(fd, file, file.count, 0) == file.count)
    }

    deinit { close(fd) }

    /// Solid areas, a two-colour "text" block, a many-colour gradient and four-colour stripes,
    /// so every ZRLE tile type appears.
    static func pattern(x: Int, y: Int) -> UInt32 {
        switch y {
        case ..<64 where (64..<128).contains(x): (x / 3 + y / 5) % 2 == 0 ? 0x00C0_C0C0 : 0x0000_0000
        case ..<64: 0x0010_2030
        case ..<128: UInt32((x * 7 + y * 13) & 0xFF) << 16 | UInt32((x * 3) & 0xFF) << 8 | UInt32((y * 11 + x) & 0xFF)
        default: [0x00FF_0000, 0x0000_FF00, 0x0000_00FF, 0x00FF_FFFF][(x / 4) % 4]
        }
    }

    func pixel(x: Int, y: Int) -> UInt32 { pixels[y * width + x] }

    /// Sets the pixels of `width` × `height` at (`x`, `y`) to `colour`, row by row with pwrite.
    func fill(x: Int, y: Int, width: Int, height: Int, colour: UInt32) {
        let row = [UInt8]((0..<width).flatMap { _ in (0..<4).map { UInt8(truncatingIfNeeded: colour >> (8 * UInt32($0))) } })
        for line in y..<(y + height) {
            for column in x..<(x + width) { pixels[line * self.width + column] = colour }
            let offset = FramebufferHeader.size + line * header.geometry.stride + x * 4
            precondition(pwrite(fd, row, row.count, off_t(offset)) == row.count)
        }
    }

    /// The pixels of an area, row after row.
    func pixels(x: Int, y: Int, width: Int, height: Int) -> [UInt32] {
        (y..<(y + height)).flatMap { line in pixels[(line * self.width + x)..<(line * self.width + x + width)] }
    }
}

import Devices
import Glibc
import LinuxSystem
import SystemPackage

/// A display file mapped read-only: its header, and the guest's pixels as they change.
///
/// The VMM writes the file once (header) and the guest writes the pixel area through its own
/// shared mapping, so this mapping sees every change at once. The pixels are racy memory (the
/// guest writes while we read): they are only ever copied out, never bound to Swift values.
package final class FramebufferView: Sendable {
    /// The path the view was opened from, for messages.
    package let path: String
    package let header: FramebufferHeader
    /// The whole file as mapped (header included).
    private let mapping: ReadOnlyMapping

    /// Opens `path` read-only and maps it whole, then checks its header.
    package init(path: String) throws(DisplayError) {
        guard let status = FileStatus(path: path) else { throw .fileOpen(path: path, step: "open", Errno(rawValue: errno)) }
        guard status.kind == .regular else { throw .notAFile(path: path) }
        guard status.sizeInBytes >= UInt64(FramebufferHeader.size) else { throw .fileTooSmall(path: path, sizeInBytes: Int(status.sizeInBytes)) }
        let mapping: ReadOnlyMapping
        do { mapping = try ReadOnlyMapping(path: path) } catch { throw .fileOpen(path: path, step: error.call, error.errno) }
        guard mapping.sizeInBytes >= FramebufferHeader.size else { throw .fileTooSmall(path: path, sizeInBytes: mapping.sizeInBytes) }
        switch FramebufferHeader.decode(mapping.bytes(at: 0, count: FramebufferHeader.size), fileSize: mapping.sizeInBytes, name: path) {
        case .success(let header): self.header = header
        case .failure(let error): throw .badHeader(error)
        }
        self.path = path
        self.mapping = mapping
    }

    package var geometry: FramebufferGeometry { header.geometry }
    package var width: Int { header.geometry.width }
    package var height: Int { header.geometry.height }

    /// The VMM's control socket (where keyboard input goes), or nil for a view-only display.
    package var controlSocketPath: String? { header.controlSocketPath.isEmpty ? nil : header.controlSocketPath }

    /// The file's last path component, for window titles and desktop names.
    package var fileName: String { path.split(separator: "/").last.map(String.init) ?? path }

    /// Copies a `width` × `height` area at (`x`, `y`) into `buffer` row after row, as
    /// `0x00RRGGBB` words (the unused top byte is cleared). `buffer` is resized to fit.
    package func copyPixels(x: Int, y: Int, width: Int, height: Int, into buffer: inout [UInt32]) {
        precondition(x >= 0 && y >= 0 && width >= 0 && height >= 0 && x + width <= self.width && y + height <= self.height,
                     "area \(x),\(y) \(width)x\(height) outside the \(self.width)x\(self.height) display")
        let count = width * height
        if buffer.count != count { buffer = [UInt32](repeating: 0, count: count) }
        let stride = geometry.stride
        for row in 0..<height {
            // The header check compared the pixel area with the file size, so the row lies inside the mapping.
            mapping.copy(at: FramebufferHeader.size + (y + row) * stride + x * 4, count: width * 4, into: &buffer, atByte: row * width * 4)
        }
        for index in buffer.indices { buffer[index] &= 0x00FF_FFFF }
    }

    /// Compares pixel row `y` with the same row of `shadow` (a copy of the pixel area,
    /// `geometry.pixelBytes` long, laid out as the file). When they differ, compares the row's
    /// `segmentWidth`-pixel segments, copies those that differ into `shadow` and calls
    /// `changed` with each one's index. One memcmp per unchanged row keeps an idle screen cheap
    /// to watch.
    package func refreshRow(_ y: Int, in shadow: inout [UInt8], segmentWidth: Int, changed: (Int) -> Void) {
        precondition(y >= 0 && y < height && segmentWidth > 0, "row \(y) outside the \(width)x\(height) display")
        precondition(shadow.count == geometry.pixelBytes, "a shadow must hold the whole pixel area")
        let rowOffset = y * geometry.stride
        let live = FramebufferHeader.size + rowOffset
        guard !mapping.matches(at: live, count: width * 4, shadow, at: rowOffset) else { return }
        var segment = 0, x = 0
        while x < width {
            let bytes = min(segmentWidth, width - x) * 4
            if mapping.refresh(at: live + x * 4, count: bytes, &shadow, at: rowOffset + x * 4) { changed(segment) }
            segment += 1
            x += segmentWidth
        }
    }
}

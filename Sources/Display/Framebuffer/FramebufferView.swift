import Devices
import Glibc
import SystemPackage

/// A display file mapped read-only: its header, and the guest's pixels as they change.
///
/// The VMM writes the file once (header) and the guest writes the pixel area through its own
/// shared mapping, so this mapping sees every change at once. The pixels are racy memory (the
/// guest writes while we read): they are only ever copied out, never bound to Swift values.
/// `@unchecked Sendable` is sound because the base and length never change after init.
@safe
package final class FramebufferView: @unchecked Sendable {
    /// The path the view was opened from, for messages.
    package let path: String
    package let header: FramebufferHeader
    /// The whole file as mapped (header included).
    private let base: UnsafeRawPointer
    private let mappedBytes: Int

    /// Opens `path` read-only and maps it whole (open, fstat, mmap PROT_READ MAP_SHARED), then
    /// checks its header.
    package init(path: String) throws(DisplayError) {
        // SAFETY: the path is passed as a NUL-terminated copy that lives through the call.
        let fd = unsafe open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .fileOpen(path: path, step: "open", Errno(rawValue: errno)) }
        // The mapping keeps the file alive; the descriptor is not needed after mmap.
        defer { close(fd) }
        var info = stat()
        // SAFETY: `info` is a local the call fills in.
        guard unsafe fstat(fd, &info) == 0 else { throw .fileOpen(path: path, step: "fstat", Errno(rawValue: errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .notAFile(path: path) }
        let size = Int(info.st_size)
        guard size >= FramebufferHeader.size else { throw .fileTooSmall(path: path, sizeInBytes: size) }
        // SAFETY: a fresh read-only mapping of the whole file; owned and unmapped by this object.
        let mapped = unsafe mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else {
            throw .fileOpen(path: path, step: "mmap", Errno(rawValue: errno))
        }
        // SAFETY: the first 4096 bytes lie inside the mapping (size was checked above).
        let headerBytes = unsafe [UInt8](UnsafeRawBufferPointer(start: mapped, count: FramebufferHeader.size))
        switch FramebufferHeader.decode(headerBytes, fileSize: size, name: path) {
        case .success(let header):
            self.header = header
        case .failure(let error):
            // SAFETY: unmaps the mapping just made; nothing else holds it.
            _ = unsafe munmap(mapped, size)
            throw .badHeader(error)
        }
        self.path = path
        unsafe self.base = UnsafeRawPointer(mapped)
        self.mappedBytes = size
    }

    deinit {
        // SAFETY: unmaps exactly the mapping made in init; nothing else holds it once we are gone.
        _ = unsafe munmap(UnsafeMutableRawPointer(mutating: base), mappedBytes)
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
        unsafe buffer.withUnsafeMutableBytes { destination in
            for row in 0..<height {
                // SAFETY: the row segment lies inside the pixel area (checked above), which lies
                // inside the mapping (the header check compared it with the file size); the
                // destination row lies inside `buffer`, sized to width × height words.
                unsafe memcpy(destination.baseAddress! + row * width * 4,
                              base + FramebufferHeader.size + (y + row) * stride + x * 4, width * 4)
            }
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
        unsafe shadow.withUnsafeMutableBytes { copy in
            // SAFETY: row `y` lies inside the pixel area (checked above) of both the mapping
            // (the header check compared it with the file size) and the shadow.
            let live = unsafe base + FramebufferHeader.size + rowOffset, saved = unsafe copy.baseAddress! + rowOffset
            guard unsafe memcmp(saved, live, width * 4) != 0 else { return }
            var segment = 0, x = 0
            while x < width {
                let bytes = min(segmentWidth, width - x) * 4
                // SAFETY: the segment lies inside the row.
                if unsafe memcmp(saved + x * 4, live + x * 4, bytes) != 0 {
                    unsafe memcpy(saved + x * 4, live + x * 4, bytes)
                    changed(segment)
                }
                segment += 1
                x += segmentWidth
            }
        }
    }
}

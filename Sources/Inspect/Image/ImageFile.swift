import LinuxSystem
import Glibc

/// One file an image reads from, opened read-only; reads are positioned (pread), so one file
/// serves any number of readers, and holes of a live memfd are read without allocating.
package final class ImageFile: Sendable {
    package let path: String
    package let sizeInBytes: UInt64
    private let descriptor: CInt

    package init(path: String) throws(InspectError) {
        let fd = unsafe open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall(path: path, name: "open", errno: errno) }
        var status = stat()
        guard unsafe fstat(fd, &status) == 0 else {
            let error = errno
            close(fd)
            throw .systemCall(path: path, name: "fstat", errno: error)
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .unknownFormat(path: path, reason: "it is not a regular file")
        }
        self.path = path
        self.descriptor = fd
        self.sizeInBytes = UInt64(status.st_size)
    }

    deinit { close(descriptor) }

    /// Fills `buffer` from `offset`; bytes past the end of the file are an error.
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(InspectError) {
        guard offset <= sizeInBytes, UInt64(buffer.count) <= sizeInBytes - offset else {
            throw .damaged(path: path, reason: "a read of \(buffer.count) bytes at \(offset) runs past its end (\(sizeInBytes) bytes)")
        }
        let done: Int
        do { done = try unsafe PositionedIO.read(descriptor, into: buffer, at: offset, subject: path) } catch { throw InspectError(error) }
        guard done == buffer.count else { throw .damaged(path: path, reason: "it ended at \(offset + UInt64(done)) while being read") }
    }

    /// `count` bytes at `offset` in a new array.
    package func read(count: Int, at offset: UInt64) throws(InspectError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try read(into: &bytes, at: offset)
        return bytes
    }

    /// Fills all of `bytes` from `offset` (a caller's reused array: nothing is allocated).
    package func read(into bytes: inout [UInt8], at offset: UInt64) throws(InspectError) {
        guard !bytes.isEmpty else { return }
        // SAFETY: the buffer is used only during the call.
        let result: Result<Void, InspectError> = unsafe bytes.withUnsafeMutableBytes { buffer in
            do throws(InspectError) { try unsafe read(into: buffer, at: offset); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// The data ranges of the file (SEEK_DATA/4 /* SEEK_HOLE */); the whole file where holes are not reported.
    package func dataRanges(in range: Range<UInt64>) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var position = range.lowerBound
        while position < range.upperBound {
            let data = lseek(descriptor, off_t(position), 3 /* SEEK_DATA */)
            if data < 0 {
                // ENXIO: no data after `position`. Anything else: holes are unknown; treat all as data.
                if errno != ENXIO { return [range] }
                break
            }
            let start = UInt64(data)
            guard start < range.upperBound else { break }
            let hole = lseek(descriptor, off_t(start), 4 /* SEEK_HOLE */)
            let end = hole < 0 ? range.upperBound : min(UInt64(hole), range.upperBound)
            ranges.append(start..<end)
            position = end
        }
        return ranges
    }
}

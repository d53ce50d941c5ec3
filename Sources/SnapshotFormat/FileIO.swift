import Glibc

/// Positioned reads and writes that finish the whole range, retrying short transfers and EINTR.
package enum FileIO {
    /// Writes all of `bytes` at `offset` with pwrite(2), in calls of at most 8 MiB.
    package static func writeAll(
        _ fd: CInt, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String
    ) throws(SnapshotFormatError) {
        var done = 0
        let total = bytes.count
        while done < total {
            let chunk = min(total - done, SnapshotLayout.maximumIOLength)
            // SAFETY: [done, done + chunk) lies inside `bytes`, which the caller keeps alive for the call.
            let written = unsafe pwrite(fd, bytes.baseAddress! + done, chunk, off_t(offset + UInt64(done)))
            if written < 0 {
                if errno == EINTR { continue }
                throw .systemCall(path: path, name: "pwrite", errno: errno)
            }
            if written == 0 { throw .systemCall(path: path, name: "pwrite", errno: EIO) }
            done += written
        }
    }

    /// Writes an array at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: [UInt8], at offset: UInt64, path: String) throws(SnapshotFormatError) {
        guard !bytes.isEmpty else { return }
        // SAFETY: the buffer is used only during the call.
        let result: Result<Void, SnapshotFormatError> = unsafe bytes.withUnsafeBytes { buffer in
            do throws(SnapshotFormatError) { try unsafe writeAll(fd, buffer, at: offset, path: path); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Fills `buffer` from `offset` with pread(2); a file that ends first is `truncated`.
    package static func readAll(
        _ fd: CInt, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, path: String
    ) throws(SnapshotFormatError) {
        var done = 0
        let total = buffer.count
        while done < total {
            let chunk = min(total - done, SnapshotLayout.maximumIOLength)
            // SAFETY: [done, done + chunk) lies inside `buffer`, which the caller keeps alive for the call.
            let count = unsafe pread(fd, buffer.baseAddress! + done, chunk, off_t(offset + UInt64(done)))
            if count < 0 {
                if errno == EINTR { continue }
                throw .systemCall(path: path, name: "pread", errno: errno)
            }
            if count == 0 {
                throw .truncated(path: path, expected: offset + UInt64(total), found: offset + UInt64(done))
            }
            done += count
        }
    }

    /// Reads `count` bytes at `offset` into a new array.
    package static func read(_ fd: CInt, count: Int, at offset: UInt64, path: String) throws(SnapshotFormatError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        // SAFETY: the buffer is used only during the call.
        let result: Result<Void, SnapshotFormatError> = unsafe bytes.withUnsafeMutableBytes { buffer in
            do throws(SnapshotFormatError) { try unsafe readAll(fd, into: buffer, at: offset, path: path); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
        return bytes
    }
}

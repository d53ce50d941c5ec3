import LinuxSystem

/// Positioned reads and writes of snapshot files that finish the whole range, with the
/// format's errors: a file that ends early is `truncated`.
package enum FileIO {
    /// Writes all of `bytes` at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: RawSpan, at offset: UInt64, path: String) throws(SnapshotFormatError) {
        do { try PositionedIO.writeAll(fd, bytes, at: offset, subject: path) } catch { throw SnapshotFormatError(error) }
    }

    /// Writes an array at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: [UInt8], at offset: UInt64, path: String) throws(SnapshotFormatError) {
        guard !bytes.isEmpty else { return }
        do { try PositionedIO.writeAll(fd, bytes, at: offset, subject: path) } catch { throw SnapshotFormatError(error) }
    }

    /// Fills `span` from `offset`; a file that ends first is `truncated`.
    package static func readAll(_ fd: CInt, into span: inout MutableRawSpan, at offset: UInt64, path: String) throws(SnapshotFormatError) {
        let count: Int
        do { count = try PositionedIO.read(fd, into: &span, at: offset, subject: path) } catch { throw SnapshotFormatError(error) }
        guard count == span.byteCount else {
            throw .truncated(path: path, expected: offset + UInt64(span.byteCount), found: offset + UInt64(count))
        }
    }

    /// Reads `count` bytes at `offset` into a new array.
    package static func read(_ fd: CInt, count: Int, at offset: UInt64, path: String) throws(SnapshotFormatError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        try bytes.withMutableBytes { (buffer) throws(SnapshotFormatError) in try readAll(fd, into: &buffer, at: offset, path: path) }
        return bytes
    }
}

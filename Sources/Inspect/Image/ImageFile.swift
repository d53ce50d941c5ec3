import LinuxSystem
import Glibc

/// One file an image reads from, opened read-only; reads are positioned (pread), so one file
/// serves any number of readers, and holes of a live memfd are read without allocating.
package final class ImageFile: Sendable {
    package let path: String
    package let sizeInBytes: UInt64
    private let file: OwnedFileDescriptor
    private var descriptor: CInt { file.rawValue }

    package init(path: String) throws(InspectError) {
        do { file = try OwnedFileDescriptor.open(path, .readOnly) } catch {
            throw .systemCall(path: path, name: "open", errno: error.errno.rawValue)
        }
        guard let status = FileStatus(descriptor: file.rawValue) else { throw .systemCall(path: path, name: "fstat", errno: errno) }
        guard status.kind == .regular else { throw .unknownFormat(path: path, reason: "it is not a regular file") }
        self.path = path
        self.sizeInBytes = status.sizeInBytes
    }

    /// Fills `buffer` from `offset`; bytes past the end of the file are an error.
    package func read(into buffer: inout MutableRawSpan, at offset: UInt64) throws(InspectError) {
        guard offset <= sizeInBytes, UInt64(buffer.byteCount) <= sizeInBytes - offset else {
            throw .damaged(path: path, reason: "a read of \(buffer.byteCount) bytes at \(offset) runs past its end (\(sizeInBytes) bytes)")
        }
        let done: Int
        do { done = try PositionedIO.read(descriptor, into: &buffer, at: offset, subject: path) } catch { throw InspectError(error) }
        guard done == buffer.byteCount else { throw .damaged(path: path, reason: "it ended at \(offset + UInt64(done)) while being read") }
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
        try bytes.withMutableBytes { (buffer) throws(InspectError) in try read(into: &buffer, at: offset) }
    }

    /// The data ranges of the file within `range` (`DataExtents`); all of it where holes are not reported.
    package func dataRanges(in range: Range<UInt64>) -> [Range<UInt64>] {
        (try? DataExtents.ranges(of: descriptor, from: range.lowerBound, to: range.upperBound, path: path)) ?? [range]
    }
}

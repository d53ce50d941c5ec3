/// Overflow-checked arithmetic for every offset and length taken from a snapshot file.
///
/// One place decides whether `offset + length` fits and lies inside the file, so no reader
/// path can compute an out-of-file position from crafted fields.
package struct BoundsCheck: Sendable {
    /// The file the numbers came from, for messages.
    package let path: String
    /// The file's size in bytes.
    package let fileSize: UInt64

    package init(path: String, fileSize: UInt64) {
        self.path = path
        self.fileSize = fileSize
    }

    /// `a + b`, or an error naming `area` if it overflows.
    package func sum(_ a: UInt64, _ b: UInt64, area: String) throws(SnapshotFormatError) -> UInt64 {
        let (result, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw .arithmeticOverflow(path: path, area: area) }
        return result
    }

    /// `a * b`, or an error naming `area` if it overflows.
    package func product(_ a: UInt64, _ b: UInt64, area: String) throws(SnapshotFormatError) -> UInt64 {
        let (result, overflow) = a.multipliedReportingOverflow(by: b)
        guard !overflow else { throw .arithmeticOverflow(path: path, area: area) }
        return result
    }

    /// Checks `[offset, offset + length)` lies inside the file and returns its end.
    @discardableResult
    package func inside(offset: UInt64, length: UInt64, area: String) throws(SnapshotFormatError) -> UInt64 {
        let end = try sum(offset, length, area: area)
        guard end <= fileSize else {
            throw .outsideFile(path: path, area: area, offset: offset, length: length, fileSize: fileSize)
        }
        return end
    }

    /// Checks `offset` is a multiple of `alignment` (a power of two).
    package func aligned(_ offset: UInt64, to alignment: UInt64, area: String) throws(SnapshotFormatError) {
        guard offset & (alignment - 1) == 0 else {
            throw .misaligned(path: path, area: area, offset: offset, alignment: alignment)
        }
    }

    /// `value` rounded up to a multiple of `alignment` (a power of two), overflow-checked.
    package func roundUp(_ value: UInt64, to alignment: UInt64, area: String) throws(SnapshotFormatError) -> UInt64 {
        try sum(value, alignment - 1, area: area) & ~(alignment - 1)
    }
}

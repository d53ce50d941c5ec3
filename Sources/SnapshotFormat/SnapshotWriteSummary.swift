/// What a snapshot write did, for logs and throughput reports.
package struct SnapshotWriteSummary: Sendable, Equatable {
    /// The finished file's apparent size (holes included).
    package var fileSizeInBytes: UInt64 = 0
    /// Bytes handed to pwrite: pages, bitmaps, CRC tables, state and header.
    package var bytesWritten: UInt64 = 0
    /// Pages whose contents were written.
    package var pagesWritten: UInt64 = 0
    /// Pages found all zero and left as holes.
    package var pagesZero: UInt64 = 0
    /// Pages left out of a diff because they were not in the dirty bitmap.
    package var pagesSkipped: UInt64 = 0
    /// The written file's identity, which a diff of it records as its parent.
    package var identity: SnapshotIdentity?

    package init() {}
}

/// What merging a snapshot chain did: how many files it composed and what the write did.
package struct SnapshotMergeSummary: Sendable, Equatable {
    /// Files in the chain, the top and every parent down to the full snapshot.
    package var filesMerged: Int
    /// The full snapshot's write: pages written, zero pages left as holes, bytes, file size.
    package var write: SnapshotWriteSummary

    package init(filesMerged: Int, write: SnapshotWriteSummary) {
        self.filesMerged = filesMerged
        self.write = write
    }
}

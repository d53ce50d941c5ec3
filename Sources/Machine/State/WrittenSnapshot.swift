import SnapshotFormat

/// What `Machine.writeSnapshot` wrote, for the API's report.
package struct WrittenSnapshot: Sendable, Equatable {
    package let path: String
    package let kind: SnapshotKind
    /// The snapshot a diff names as its parent, as a path on this host; nil for a full snapshot.
    package let parentPath: String?
    package let summary: SnapshotWriteSummary
}

/// PUT /vm/snapshot body.
package struct SnapshotRequest: Codable, Sendable, Equatable {
    /// Where the snapshot file goes (created with mode 0600; replaced atomically if it exists).
    package var path: String
    /// "full" (the default): all of memory. "diff": only the pages written since this VM's
    /// previous snapshot, which the file names as its parent and which must be in the same directory.
    package var kind: String?
    /// Resume the guest afterwards (default true); false leaves it paused.
    package var resume: Bool?

    /// The kinds `kind` may name.
    package static let kinds = ["full", "diff"]

    package init(path: String, kind: String? = nil, resume: Bool? = nil) {
        self.path = path
        self.kind = kind
        self.resume = resume
    }
}

/// PUT /vm/snapshot answer: what was written and how long the guest was paused for it.
package struct SnapshotReport: Codable, Sendable, Equatable {
    package var path: String
    /// "full" or "diff".
    package var kind: String
    /// For a diff, the path of the snapshot it names as its parent; absent for a full snapshot.
    package var parent: String?
    package var fileSizeInBytes: UInt64
    package var bytesWritten: UInt64
    /// Pages whose bytes are in the file: every non-zero page (full), or every changed non-zero page (diff).
    package var pagesWritten: UInt64
    /// Pages recorded as zero without bytes: all zero pages (full), or changed pages now zero (diff).
    package var pagesZero: UInt64
    package var durationSeconds: Double
    /// The VM's state afterwards: "running", or "paused" when asked to stay paused.
    package var state: String

    package init(path: String, kind: String, parent: String? = nil, fileSizeInBytes: UInt64, bytesWritten: UInt64, pagesWritten: UInt64,
                 pagesZero: UInt64, durationSeconds: Double, state: String) {
        self.path = path
        self.kind = kind
        self.parent = parent
        self.fileSizeInBytes = fileSizeInBytes
        self.bytesWritten = bytesWritten
        self.pagesWritten = pagesWritten
        self.pagesZero = pagesZero
        self.durationSeconds = durationSeconds
        self.state = state
    }
}

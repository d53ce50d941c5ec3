/// PUT /vm/snapshot body.
package struct SnapshotRequest: Codable, Sendable, Equatable {
    /// Where the snapshot file goes (created with mode 0600; replaced atomically if it exists).
    package var path: String
    /// "full" (the default). "diff" is described by the format but not yet written by Engram.
    package var kind: String?
    /// Resume the guest afterwards (default true); false leaves it paused.
    package var resume: Bool?

    package init(path: String, kind: String? = nil, resume: Bool? = nil) {
        self.path = path
        self.kind = kind
        self.resume = resume
    }
}

/// PUT /vm/snapshot answer: what was written and how long the guest was paused for it.
package struct SnapshotReport: Codable, Sendable, Equatable {
    package var path: String
    package var kind: String
    package var fileSizeInBytes: UInt64
    package var bytesWritten: UInt64
    package var pagesWritten: UInt64
    package var pagesZero: UInt64
    package var durationSeconds: Double
    /// The VM's state afterwards: "running", or "paused" when asked to stay paused.
    package var state: String

    package init(path: String, kind: String, fileSizeInBytes: UInt64, bytesWritten: UInt64, pagesWritten: UInt64,
                 pagesZero: UInt64, durationSeconds: Double, state: String) {
        self.path = path
        self.kind = kind
        self.fileSizeInBytes = fileSizeInBytes
        self.bytesWritten = bytesWritten
        self.pagesWritten = pagesWritten
        self.pagesZero = pagesZero
        self.durationSeconds = durationSeconds
        self.state = state
    }
}

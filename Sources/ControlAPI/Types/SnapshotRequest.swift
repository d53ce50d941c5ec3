/// What a snapshot holds: all of memory, or the pages written since the VM's previous snapshot.
package enum SnapshotRequestKind: String, Codable, Sendable, Equatable {
    case full, diff

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let kind = SnapshotRequestKind(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "kind is \"\(text)\"; expected \"full\" or \"diff\"")
        }
        self = kind
    }
}

/// PUT /vm/snapshot body.
package struct SnapshotRequest: Codable, Sendable, Equatable {
    /// Where the snapshot file goes (created with mode 0600; an existing regular file is replaced atomically; anything else there is refused).
    package var path: String
    /// "full" (the default): all of memory. "diff": only the pages written since this VM's
    /// previous snapshot, which the file names as its parent and which must be in the same directory.
    package var kind: SnapshotRequestKind?
    /// Resume the guest afterwards (default true); false leaves it paused.
    package var resume: Bool?
    /// Replace a snapshot even though other snapshots in its directory name it as their parent
    /// (default false: refused, since those diffs would then compose the wrong memory).
    package var force: Bool?

    package init(path: String, kind: SnapshotRequestKind? = nil, resume: Bool? = nil, force: Bool? = nil) {
        self.path = path
        self.kind = kind
        self.resume = resume
        self.force = force
    }
}

/// PUT /vm/snapshot answer: what was written and how long the guest was paused for it.
package struct SnapshotReport: Codable, Sendable, Equatable {
    package var path: String
    package var kind: SnapshotRequestKind
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

    package init(path: String, kind: SnapshotRequestKind, parent: String? = nil, fileSizeInBytes: UInt64, bytesWritten: UInt64, pagesWritten: UInt64,
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

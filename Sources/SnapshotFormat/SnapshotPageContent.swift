/// What `SnapshotReader.readPage` found for a page.
package enum SnapshotPageContent: Sendable, Equatable {
    /// Read from this file; its CRC matched.
    case stored
    /// Not stored in a full snapshot: the page is zero (the buffer was zero-filled).
    case zero
    /// Not stored in a diff snapshot: take it from the parent (the buffer was zero-filled).
    case inParent
}

/// Whether a snapshot holds all of memory or only what changed since a parent.
package enum SnapshotKind: UInt32, Sendable, Equatable {
    /// Every non-zero page; a clear bit means the page is zero.
    case full = 1
    /// Only changed pages; a clear bit means "take it from the parent snapshot".
    case diff = 2
}

import SnapshotFormat

/// Why a page source could not deliver a page; the guest must then stop, never see wrong memory.
package enum PageSourceError: Error, CustomStringConvertible {
    case snapshot(SnapshotFormatError)
    /// The page server or store could not be reached, or answered wrongly (the message says which).
    case remote(String)
    /// A working set that does not belong to this snapshot, or a damaged one.
    case workingSet(String)
    /// The source cannot do this.
    case unsupported(String)

    package var description: String {
        switch self {
        case .snapshot(let error): error.description
        case .remote(let message), .workingSet(let message), .unsupported(let message): message
        }
    }
}

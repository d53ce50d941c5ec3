import SnapshotFormat

/// Why a page source could not deliver a page; the guest must then stop, never see wrong memory.
package enum PageSourceError: Error, CustomStringConvertible {
    case snapshot(SnapshotFormatError)

    package var description: String {
        switch self {
        case .snapshot(let error): error.description
        }
    }
}

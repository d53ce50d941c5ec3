/// Why a snapshot could not be stored in or read from an object store; one line each, naming
/// the object and what was expected. Credentials never appear.
package enum ObjectSnapshotError: Error, CustomStringConvertible {
    case store(ObjectStoreError)
    case damaged(String, String)
    case missing(String)
    case local(String)

    package var description: String {
        switch self {
        case .store(let error): error.description
        case .damaged(let origin, let reason): "\(origin) is damaged: \(reason)"
        case .missing(let origin): "\(origin) is not there: no snapshot was stored under that name (no manifest)"
        case .local(let message): message
        }
    }
}

/// Why the machine refused or failed a control request; the server turns it into an HTTP status.
package enum VMControlError: Error, Equatable, CustomStringConvertible {
    /// The request does not fit the state, e.g. resume while running. HTTP 409.
    case invalidState(operation: String, state: String)
    /// The machine failed while carrying it out. HTTP 500.
    case failed(operation: String, reason: String)

    package var description: String {
        switch self {
        case .invalidState(let operation, let state): "cannot \(operation): the VM is \(state)"
        case .failed(let operation, let reason): "\(operation) failed: \(reason)"
        }
    }
}

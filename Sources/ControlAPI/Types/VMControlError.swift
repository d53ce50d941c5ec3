/// Why the machine refused or failed a control request; the server turns it into an HTTP status.
package enum VMControlError: Error, Equatable, CustomStringConvertible {
    /// The request does not fit the state, e.g. resume while running. HTTP 409.
    case invalidState(operation: String, state: String)
    /// The machine failed while carrying it out. HTTP 500.
    case failed(operation: String, reason: String)
    /// The request asks for something the VM cannot do as asked, e.g. a diff snapshot outside
    /// its parent's directory. HTTP 400.
    case invalidRequest(reason: String)
    /// The request needs something the VM does not have yet, e.g. a diff snapshot before any
    /// full one. HTTP 409.
    case conflict(reason: String)

    package var description: String {
        switch self {
        case .invalidState(let operation, let state): "cannot \(operation): the VM is \(state)"
        case .failed(let operation, let reason): "\(operation) failed: \(reason)"
        case .invalidRequest(let reason), .conflict(let reason): reason
        }
    }
}

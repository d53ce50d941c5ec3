/// Why the control socket could not be served or reached; each message names the socket path.
package enum ControlAPIError: Error, CustomStringConvertible, Equatable {
    case socketInUse(path: String)
    case notASocket(path: String)
    case bind(path: String, reason: String)
    case noVM(path: String)
    case connection(path: String, reason: String)
    case malformedReply(path: String)

    package var description: String {
        switch self {
        case .socketInUse(let path): "\(path) is in use by another running VM; choose another --api-socket"
        case .notASocket(let path): "\(path) exists and is not a socket; refusing to replace it"
        case .bind(let path, let reason): "cannot serve the control API on \(path): \(reason)"
        case .noVM(let path): "no VM is listening on \(path)"
        case .connection(let path, let reason): "cannot talk to the VM on \(path): \(reason)"
        case .malformedReply(let path): "the VM on \(path) sent a malformed reply"
        }
    }
}

/// Why the control socket could not be served; each message names the socket path.
package enum ControlServerError: Error, Equatable, CustomStringConvertible {
    /// Something accepts connections on the path: most likely another running VM.
    case socketInUse(path: String)
    /// The path exists and is not a socket (a file, a directory, a symbolic link).
    case notASocket(path: String)
    /// The path is a socket, but whether anything listens on it could not be told.
    case cannotCheck(path: String, reason: String)
    /// A stale socket was found and could not be removed.
    case cannotRemoveStale(path: String, reason: String)
    /// The path is longer than a Unix socket address allows (with room for the private staging directory).
    case pathTooLong(path: String, limitInBytes: Int)
    /// Binding or placing the socket failed.
    case cannotBind(path: String, reason: String)

    package var description: String {
        switch self {
        case .socketInUse(let path):
            "\(path) is in use: another process (a running VM?) accepts connections on it; stop it or choose another path"
        case .notASocket(let path): "\(path) exists and is not a socket; refusing to replace it"
        case .cannotCheck(let path, let reason): "cannot tell whether \(path) is in use: \(reason)"
        case .cannotRemoveStale(let path, let reason): "cannot remove the stale socket \(path): \(reason)"
        case .pathTooLong(let path, let limit): "\(path) is too long for a Unix socket: use at most \(limit) bytes"
        case .cannotBind(let path, let reason): "cannot serve the control API on \(path): \(reason)"
        }
    }
}

/// Why a control request got no answer; each message names the socket path.
package enum ControlClientError: Error, Equatable, CustomStringConvertible {
    /// No file at the path.
    case socketMissing(path: String)
    /// The socket exists but nothing accepts on it (the VMM that made it has exited), or it is not a socket.
    case connectionRefused(path: String)
    /// The socket belongs to another user (it is mode 0600).
    case permissionDenied(path: String)
    /// Connecting failed for another reason.
    case connectionFailed(path: String, reason: String)
    /// The server closed the connection before a whole answer arrived.
    case closedBeforeReply(path: String)
    /// The bytes that came back are not an HTTP answer, or too large to be one.
    case malformedReply(path: String, reason: String)
    /// No answer within the time limit.
    case timedOut(path: String, seconds: Int64)
    /// The request's body could not be encoded.
    case malformedRequest(reason: String)

    package var description: String {
        switch self {
        case .socketMissing(let path): "no VM is listening on \(path): there is no such socket"
        case .connectionRefused(let path): "no VM is listening on \(path): connection refused (a stale socket?)"
        case .permissionDenied(let path): "cannot connect to \(path): permission denied (the socket is mode 0600: run as the VM's user)"
        case .connectionFailed(let path, let reason): "cannot connect to \(path): \(reason)"
        case .closedBeforeReply(let path): "the VM on \(path) closed the connection before answering"
        case .malformedReply(let path, let reason): "the VM on \(path) sent a malformed reply: \(reason)"
        case .timedOut(let path, let seconds): "the VM on \(path) did not answer within \(seconds) s"
        case .malformedRequest(let reason): "the request could not be encoded: \(reason)"
        }
    }
}

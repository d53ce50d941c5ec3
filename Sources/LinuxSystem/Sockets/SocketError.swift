import SystemPackage

/// A socket that could not be made, bound, connected, read or written.
package enum SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An address that does not parse or resolve.
    case address(String, reason: String)
    /// An address another socket already listens on.
    case addressInUse(String)
    /// A call on a socket failed (`.timedOut` when a time limit passed).
    case call(peer: String, call: String, Errno)
    /// The peer closed the connection.
    case closed(peer: String)

    package var description: String {
        switch self {
        case .address(let address, let reason): "\(address) is not a usable address: \(reason); expected HOST:PORT"
        case .addressInUse(let address): "\(address) is already in use"
        case .call(let peer, let call, let errno): "\(peer): \(call) failed: \(errno)"
        case .closed(let peer): "\(peer) closed the connection"
        }
    }

    /// True when a time limit (SO_RCVTIMEO, SO_SNDTIMEO, a connect deadline) ended the call.
    package var isTimeout: Bool {
        if case .call(_, _, .timedOut) = self { return true }
        return false
    }
}

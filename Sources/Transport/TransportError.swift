import SystemPackage

/// What went wrong between a page server and its client; every message names the peer and what was expected.
package enum TransportError: Error, CustomStringConvertible, Equatable {
    /// A HOST:PORT that cannot be used.
    case address(String, reason: String)
    /// A socket call failed (`peer` is the other end, or the address listened on).
    case socket(peer: String, call: String, Errno)
    /// The peer closed the connection.
    case closed(peer: String)
    /// The peer sent something the protocol does not allow.
    case malformed(peer: String, reason: String)
    /// The handshake failed: wrong secret, wrong protocol, or no answer in time.
    case authentication(peer: String, reason: String)
    /// The server answered with an error message.
    case refused(peer: String, message: String)
    /// The server serves as many connections as it may and turned this one away.
    case busy(peer: String)
    /// The shared secret cannot be used.
    case secret(path: String, reason: String)
    /// TLS with the peer failed: its certificate, its key, or it does not speak TLS.
    case tls(peer: String, reason: String)
    /// The security options (secret, certificates, plaintext) do not fit together or cannot be loaded.
    case security(reason: String)

    package var description: String {
        switch self {
        case .address(let text, let reason): "\(text) is not a usable address: \(reason); expected HOST:PORT"
        case .socket(let peer, let call, let errno): "\(call) (\(peer)) failed: \(errno)"
        case .closed(let peer): "\(peer) closed the connection"
        case .malformed(let peer, let reason): "\(peer) broke the protocol: \(reason)"
        case .authentication(let peer, let reason): "authentication with \(peer) failed: \(reason)"
        case .refused(let peer, let message): "\(peer) refused: \(message)"
        case .secret(let path, let reason): "secret file \(path): \(reason)"
        case .tls(let peer, let reason): "TLS with \(peer) failed: \(reason)"
        case .security(let reason): "TLS: \(reason)"
        case .busy(let peer): "\(peer) is busy: it serves as many connections as it may"
        }
    }

    /// True for failures a reconnect may cure (the peer went away or stalled); false when the
    /// peer answered and the answer was wrong.
    package var isConnectionLoss: Bool {
        switch self {
        case .socket, .closed, .busy: true
        default: false
        }
    }
}

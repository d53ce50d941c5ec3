import Glibc
import SystemPackage

/// LinuxSystem's one error: a system call that failed (which call, on what, errno), a path
/// refused before any call, an address that does not parse or is taken, a peer that closed the
/// connection, or zlib refusing a call. Targets wrap it in their own error types, or show it
/// as it is.
package enum SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A call failed: its name (e.g. "bind" or "fsync (directory)"), what it was made on (a
    /// path, a peer, a purpose), and errno (`.timedOut` when a time limit passed).
    case failed(String, on: String, Errno)
    /// No call failed: the path was refused before one was made (a FIFO where a file was to be
    /// written), with why in words and the errno that says the same.
    case refused(String, because: String, Errno)
    /// An address that does not parse or resolve.
    case address(String, reason: String)
    /// An address another socket already listens on.
    case addressInUse(String)
    /// The peer closed the connection.
    case closed(peer: String)
    /// A compression library (zlib) refused a call: which one, and its return code.
    case compression(call: String, code: Int32)
    /// TLS failed with `peer` (or setting it up failed): OpenSSL's reason, or the certificate check's.
    case tls(peer: String, reason: String)

    /// A failed call: "SUBJECT: CALL failed: ERRNO".
    package init(_ call: String, on subject: String, _ errno: Errno) {
        self = .failed(call, on: subject, errno)
    }

    /// A path refused before any call: "cannot write SUBJECT: REASON".
    package init(refusing subject: String, because reason: String, _ errno: Errno) {
        self = .refused(subject, because: reason, errno)
    }

    /// The error the last failed call left in `errno`.
    package static func last(_ call: String, on subject: String) -> SystemError {
        .failed(call, on: subject, Errno(rawValue: Glibc.errno))
    }

    package var description: String {
        switch self {
        case .failed(let call, let subject, let errno): "\(subject): \(call) failed: \(errno)"
        case .refused(let subject, let reason, _): "cannot write \(subject): \(reason)"
        case .address(let address, let reason): "\(address) is not a usable address: \(reason); expected HOST:PORT"
        case .addressInUse(let address): "\(address) is already in use"
        case .closed(let peer): "\(peer) closed the connection"
        case .compression(let call, let code): "zlib \(call) failed with code \(code)"
        case .tls(let peer, let reason): "TLS with \(peer) failed: \(reason)"
        }
    }

    /// The failed call's name; for an error no call returned, the step that found it
    /// ("open (REASON)" for a refused path, "resolve", "bind", "receive", zlib's call).
    package var call: String {
        switch self {
        case .failed(let call, _, _): call
        case .refused(_, let reason, _): "open (\(reason))"
        case .address: "resolve"
        case .addressInUse: "bind"
        case .closed: "receive"
        case .compression(let call, _): call
        case .tls: "TLS"
        }
    }

    /// What the call was made on: a path, a peer, an address, or "zlib".
    package var subject: String {
        switch self {
        case .failed(_, let subject, _), .refused(let subject, _, _): subject
        case .address(let address, _), .addressInUse(let address): address
        case .closed(let peer): peer
        case .compression: "zlib"
        case .tls(let peer, _): peer
        }
    }

    /// The errno that says what went wrong; for an error no call returned, the nearest one
    /// (EINVAL for an unusable address, EADDRINUSE, ECONNRESET for a closed peer, EIO for zlib).
    package var errno: Errno {
        switch self {
        case .failed(_, _, let errno), .refused(_, _, let errno): errno
        case .address: .invalidArgument
        case .addressInUse: .addressInUse
        case .closed: .connectionReset
        case .compression: .ioError
        case .tls: .protocolError
        }
    }

    /// Why a path was refused before any call, or nil for every other error.
    package var refusal: String? {
        if case .refused(_, let reason, _) = self { return reason }
        return nil
    }

    /// True when a time limit (SO_RCVTIMEO, SO_SNDTIMEO, a connect deadline) ended the call.
    package var isTimeout: Bool {
        if case .failed(_, _, .timedOut) = self { return true }
        return false
    }
}

import CTLS
import Glibc

/// How two peers prove who they are to each other in TLS 1.3.
package enum TLSCredentials: Sendable {
    /// An external pre-shared key both ends hold (RFC 8446 §2.2): no certificates, and a fresh
    /// ECDHE exchange on every connection keeps forward secrecy.
    case preSharedKey([UInt8])
    /// Mutual certificate authentication: this end's PEM chain and key, and the PEM authority
    /// that must have signed the peer's.
    case certificates(certificate: String, key: String, authority: String)
}

/// A TLS 1.3 configuration for one side (client or server) of many connections, through the
/// system's OpenSSL. Immutable once made, so threads share it (OpenSSL allows that for a context
/// no one changes). `@safe`: the OpenSSL context is private and freed only by deinit.
@safe
package final class TLSContext: @unchecked Sendable {
    package enum Side: Sendable { case client, server }

    package let side: Side
    private let context: OpaquePointer

    /// Loads `credentials` for `side`; a certificate, key or authority that cannot be used is
    /// named in the one-line error.
    package init(side: Side, credentials: TLSCredentials) throws(SystemError) {
        self.side = side
        var error = [CChar](repeating: 0, count: 512)
        let made: OpaquePointer?
        switch credentials {
        case .preSharedKey(let key):
            // SAFETY: the key's bytes and the error buffer outlive the call, which copies the key.
            unsafe made = unsafe key.withUnsafeBufferPointer { bytes in
                unsafe ctls_context_new(side == .server ? 1 : 0, bytes.baseAddress, bytes.count, nil, nil, nil, &error, error.count)
            }
        case .certificates(let certificate, let key, let authority):
            // SAFETY: the strings and the error buffer outlive the call.
            unsafe made = unsafe ctls_context_new(side == .server ? 1 : 0, nil, 0, certificate, key, authority, &error, error.count)
        }
        guard let made = unsafe made else { throw .tls(peer: "this end", reason: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        unsafe context = made
    }

    deinit { unsafe ctls_context_free(context) }

    /// A session on `socket` (connected), not yet shaken hands; a client checks the server's
    /// certificate against `peerHost`.
    package func session(on socket: StreamSocket, peerHost: String?) throws(SystemError) -> TLSSession {
        var error = [CChar](repeating: 0, count: 256)
        // SAFETY: the strings and the error buffer outlive the call; the session keeps the context alive through OpenSSL's reference.
        guard let session = unsafe ctls_session_new(context, socket.rawValue, peerHost, &error, error.count) else {
            throw .tls(peer: socket.peer, reason: TLSSession.text(error))
        }
        return unsafe TLSSession(session: session, socket: socket)
    }
}

import CTLS
import Glibc
import SystemPackage

/// One TLS 1.3 connection over a blocking `StreamSocket`: the handshake, then records read and
/// written with the socket's own time limits. Used by one thread at a time, like the socket;
/// `socket.shutdown()` from another thread still ends a blocked read or write. `@safe`: the
/// OpenSSL session is private and freed only by deinit.
@safe
package final class TLSSession: ByteStream, @unchecked Sendable {
    package let socket: StreamSocket
    private let session: OpaquePointer
    /// Where OpenSSL's reason for a failure is written; one per session, so reading and
    /// writing allocate nothing.
    private var error = [CChar](repeating: 0, count: 256)

    init(session: OpaquePointer, socket: StreamSocket) {
        unsafe self.session = session
        self.socket = socket
    }

    deinit { unsafe ctls_session_free(session) }

    package var peer: String { socket.peer }

    /// Authenticates the peer and agrees keys; within the socket's receive time limit.
    package func handshake() throws(SystemError) {
        // SAFETY: the error buffer outlives the call.
        let result = unsafe ctls_handshake(session, &error, error.count)
        if result != 0 { throw failure(Int(result), call: "TLS handshake") }
    }

    /// Receives up to `buffer.count` bytes; at least one (the peer closing is `.closed`).
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        // SAFETY: OpenSSL writes at most buffer.count bytes into it; the error buffer outlives the call.
        let result = unsafe ctls_read(session, buffer.baseAddress, buffer.count, &error, error.count)
        if result > 0 { return result }
        throw failure(result, call: "TLS read")
    }

    /// Sends what `send` left in the session's buffer.
    package func flush() throws(SystemError) {
        // SAFETY: the error buffer outlives the call.
        let result = unsafe ctls_flush(session, &error, error.count)
        if result != 0 { throw failure(Int(result), call: "TLS write") }
    }

    /// Sends every byte of `bytes` (through the session's buffer: `flush` ends a message).
    package func send(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        guard bytes.count > 0 else { return }
        // SAFETY: OpenSSL reads bytes.count bytes from it; the error buffer outlives the call.
        let result = unsafe ctls_write(session, bytes.baseAddress, bytes.count, &error, error.count)
        if result != 0 { throw failure(Int(result), call: "TLS write") }
    }

    /// `count` bytes of keying material for `label` (RFC 8446 §7.5), the same at both ends of
    /// this session and of no other: binds a proof made inside the session to it.
    package func exportKeyingMaterial(label: String, count: Int) throws(SystemError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        // SAFETY: OpenSSL writes exactly output.count bytes into the array.
        let result = unsafe output.withUnsafeMutableBufferPointer { unsafe ctls_export(session, label, $0.baseAddress, $0.count) }
        guard result == 0 else { throw .tls(peer: peer, reason: "cannot export keying material") }
        return output
    }

    private func failure(_ result: Int, call: String) -> SystemError {
        switch result {
        case ctls_closed: .closed(peer: peer)
        case ctls_system: .failed(call, on: peer, Glibc.errno == EAGAIN ? .timedOut : Errno(rawValue: Glibc.errno))
        default: .tls(peer: peer, reason: Self.text(error))
        }
    }

    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import LinuxSystem
import Foundation
import Glibc
import Paging
import Testing
import TestSupport
@testable import Transport

/// Neither end gets anywhere without the shared secret: a client with the wrong one sees no
/// manifest, and a server that cannot prove it knows the secret is refused by the client.
@Suite struct AuthenticationTests {
    let directory = TemporaryDirectory()

    @Test func clientWithTheWrongSecretGetsNoManifest() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        // Plaintext, so the page protocol's own proof is what refuses (TLS refuses first otherwise).
        let server = try TestServer(chain: chain, tls: false)
        let wrong = SharedSecret(bytes: Array("not the secret the server knows".utf8))
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: server.connector(secret: wrong)) }
        guard case .authentication(_, let reason) = error else {
            Issue.record("expected an authentication failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("wrong secret"))
        // The server is unharmed by it.
        #expect(try server.source().bytes(region: 0, first: 3, count: 1) == chain.bytes(region: 0, first: 3, count: 1))
    }

    @Test func clientRefusesAServerThatDoesNotKnowTheSecret() throws {
        // A server with another secret that lets anyone in: its WELCOME proof is made with its own secret.
        let other = SharedSecret(bytes: Array("the impostor's own secret bytes!".utf8))
        let impostor = try Impostor { clientNonce, serverNonce in
            other.proof(Handshake.Identity.pages.serverLabel, clientNonce, serverNonce) + TransportFixture.le(UInt64(0x1234))
        }
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: TransportFixture.connector(impostor.endpoint, tls: false)) }
        guard case .authentication(_, let reason) = error else {
            Issue.record("expected an authentication failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("server's proof"))
    }

    @Test func clientRefusesAServerReplayingItsOwnProof() throws {
        // Echoing the client's proof back proves nothing: the server's proof has its own label.
        let impostor = try Impostor(echo: true) { _, _ in [] }
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: TransportFixture.connector(impostor.endpoint, tls: false)) }
        guard case .authentication(_, let reason) = error else {
            Issue.record("expected an authentication failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("server's proof"))
    }

    @Test func clientRefusesWhatIsNotAnEngramPageServer() throws {
        let wrongMagic = try Impostor(magic: Array("HTTP/1.1".utf8)) { _, _ in [] }
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: TransportFixture.connector(wrongMagic.endpoint, tls: false)) }
        #expect(error.map { "\($0)" }?.contains("not an Engram page server") == true)
        let wrongVersion = try Impostor(version: 2) { _, _ in [] }
        let newer = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: TransportFixture.connector(wrongVersion.endpoint, tls: false)) }
        #expect(newer.map { "\($0)" }?.contains("protocol version 2") == true)
    }

    @Test func secretFileIsReadLikeAnSSHKey() throws {
        let good = directory.path("secret")
        try write("0123456789abcdef0123\n", to: good, mode: 0o600)
        let loaded = try SharedSecret.load(path: good)
        // The final newline is not part of the secret: a server holding the bare bytes accepts it.
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, secret: SharedSecret(bytes: Array("0123456789abcdef0123".utf8)))
        #expect(try RemotePageSource(connector: server.connector(secret: loaded)).manifest.fingerprint == chain.fingerprint)

        let open = directory.path("open")
        try write("0123456789abcdef0123\n", to: open, mode: 0o644)
        let readable = #expect(throws: TransportError.self) { _ = try SharedSecret.load(path: open) }
        #expect(readable.map { "\($0)" }?.contains("chmod 600") == true)

        let short = directory.path("short")
        try write("fifteen bytes!!\n", to: short, mode: 0o600)
        let tooShort = #expect(throws: TransportError.self) { _ = try SharedSecret.load(path: short) }
        #expect(tooShort.map { "\($0)" }?.contains("at least 16") == true)

        // A FIFO (or any file that is not regular) is refused at once, not waited on.
        let fifo = directory.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let notRegular = #expect(throws: TransportError.self) { _ = try SharedSecret.load(path: fifo) }
        #expect(notRegular.map { "\($0)" }?.contains("not a regular file") == true, "\(String(describing: notRegular))")

        let missing = #expect(throws: TransportError.self) { _ = try SharedSecret.load(path: directory.path("missing")) }
        guard case .secret = missing else {
            Issue.record("expected a secret error, got \(String(describing: missing))")
            return
        }
    }

    private func write(_ text: String, to path: String, mode: mode_t) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        #expect(chmod(path, mode) == 0)
    }
}

/// A fake page server for one handshake at a time: sends HELLO (with `magic` and `version`),
/// reads AUTH, answers WELCOME with `welcome(clientNonce, serverNonce)`, or with the client's
/// own proof and fingerprint 0 if `echo`.
final class Impostor: Sendable {
    let endpoint: Endpoint
    private let listener: ListeningSocket

    init(
        magic: [UInt8] = WireProtocol.magic, version: UInt32 = WireProtocol.version, echo: Bool = false,
        welcome: @escaping @Sendable (_ clientNonce: [UInt8], _ serverNonce: [UInt8]) -> [UInt8]
    ) throws {
        let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
        self.listener = listener
        endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
        Thread.detachNewThread {
            while let socket = try? listener.accept() {
                let connection = FramedConnection(socket: socket)
                socket.setReceiveTimeout(milliseconds: 20_000)
                let serverNonce = [UInt8](repeating: 0x5A, count: WireProtocol.nonceSize)
                guard (try? connection.sendFrame(.hello, magic + TransportFixture.le(version) + serverNonce)) != nil,
                      let auth = try? connection.readFrame(.auth, maximumLength: 8 + 4 + 64), auth.count == 76
                else { continue }
                let clientNonce = Array(auth[12..<44])
                let answer = echo ? Array(auth[44..<76]) + TransportFixture.le(UInt64(0)) : welcome(clientNonce, serverNonce)
                try? connection.sendFrame(.welcome, answer)
                // Keep the connection until the client hangs up.
                _ = try? connection.readFrameHeader(maximumLength: 1 << 20)
            }
        }
    }
}

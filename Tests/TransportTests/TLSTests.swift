import Foundation
import LinuxSystem
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// Page streams run over TLS 1.3 from the system's OpenSSL: keyed by the shared secret, or
/// with certificates both ends check. Each way the two ends can disagree is refused in one line
/// that says why, and the server goes on serving.
@Suite struct TLSTests {
    let directory = TemporaryDirectory()

    func pki() throws -> String { try TestCertificates.make(in: directory.path("pki")) }

    func certificates(_ pki: String, _ name: String, authority: String = "ca") throws -> TransportSecurity {
        try TransportSecurity.load(TransportSecurity.Options(certificate: "\(pki)/\(name).pem", key: "\(pki)/\(name).key", authority: "\(pki)/\(authority).pem"))
    }

    func connect(_ server: TestServer, _ security: TransportSecurity) throws -> RemotePageSource {
        try RemotePageSource(connector: PageServerConnector(endpoint: server.endpoint, security: security, reconnectTimeoutMilliseconds: 1000, log: { _ in }))
    }

    @Test func pagesCrossEncryptedUnderAKeyFromTheSecret() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        let pages = try source.bytes(region: 0, first: 100, count: 512)
        #expect(try pages == chain.bytes(region: 0, first: 100, count: 512))
        // What crossed the network holds none of the page data: a 64-byte run of any page is absent.
        let wire = relay.serverBytes
        #expect(wire.count > 512 * 4096)
        for page in stride(from: 0, to: 512, by: 97) {
            let sample = Array(pages[(page * 4096 + 1000)..<(page * 4096 + 1064)])
            #expect(wire.firstRange(of: sample) == nil, "page \(100 + page) crossed in clear text")
        }
        // The plaintext control: the same pages do cross in clear text without TLS.
        let plainServer = try TestServer(chain: chain, tls: false)
        let plainRelay = try Relay(to: plainServer.endpoint)
        _ = try RemotePageSource(connector: TransportFixture.connector(plainRelay.endpoint, tls: false)).bytes(region: 0, first: 100, count: 512)
        #expect(plainRelay.serverBytes.firstRange(of: Array(pages[1000..<1064])) != nil)
    }

    @Test func anEndLoadedForOneSideMakesOnlyThatSide() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let secretFile = directory.path("secret")
        #expect(FileManager.default.createFile(
            atPath: secretFile, contents: Data("engram test secret, 32 bytes ok!".utf8), attributes: [.posixPermissions: 0o600]))
        let options = TransportSecurity.Options(secretFile: secretFile)
        // A restoring client needs only the client side: it connects and reads pages as before.
        let client = try TransportSecurity.load(options, sides: [.client])
        guard case .tls(let clientContext, let serverContext, _) = client.encryption else {
            Issue.record("expected TLS")
            return
        }
        #expect(clientContext != nil && serverContext == nil)
        let server = try TestServer(chain: chain)
        #expect(try connect(server, client).bytes(region: 0, first: 7, count: 2) == chain.bytes(region: 0, first: 7, count: 2))
        // A server made from it refuses each connection in one line, naming the missing side.
        let logs = Locked<[String]>([])
        let wrong = try TestServer(chain: chain, security: client, log: { line in logs.withLock { $0.append(line) } })
        #expect(throws: TransportError.self) {
            _ = try RemotePageSource(connector: PageServerConnector(
                endpoint: wrong.endpoint, security: client, reconnectTimeoutMilliseconds: 500, log: { _ in }))
        }
        // The server logs from its own thread, which may come after the client has given up.
        let deadline = Date().addingTimeInterval(20)
        while !logs.withLock({ $0.contains { $0.contains("client side only") } }), Date() < deadline { usleep(1000) }
        #expect(logs.withLock { $0.contains { $0.contains("client side only") } }, "\(logs.withLock { $0 })")
    }

    @Test func aClientWithAnotherSecretIsRefusedByTLSAndTheServerServesOn() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let logs = Locked<[String]>([])
        let server = try TestServer(chain: chain, log: { line in logs.withLock { $0.append(line) } })
        let other = SharedSecret(bytes: Array("not the secret the server knows".utf8))
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: server.connector(secret: other)) }
        guard case .tls(_, let reason) = error else {
            Issue.record("expected a TLS failure, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("another secret"), "\(reason)")
        #expect(try server.source().bytes(region: 0, first: 3, count: 1) == chain.bytes(region: 0, first: 3, count: 1))
        #expect(logs.withLock { $0.contains { $0.contains("binder does not verify") && $0.contains("another secret") } }, "\(logs.withLock { $0 })")
    }

    @Test func aPlaintextClientAndATLSServerRefuseEachOtherInOneLine() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let logs = Locked<[String]>([])
        let server = try TestServer(chain: chain, log: { line in logs.withLock { $0.append(line) } })
        // The client waits for a HELLO the server never sends before TLS; the handshake's time limit ends both.
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: server.connector(tls: false)) }
        #expect(error.map { "\($0)" }?.contains("--insecure-plaintext") == true, "\(String(describing: error))")
        for _ in 0..<500 where logs.withLock({ $0.isEmpty }) { Thread.sleep(forTimeInterval: 0.01) }
        // The server gives up after 5 s, or sees the client give up first (both wait 5 s).
        #expect(logs.withLock { $0.contains { $0.contains("no TLS handshake") || $0.contains("before the TLS handshake was done") } }, "\(logs.withLock { $0 })")
        // Bytes that are not TLS at all (an HTTP request) are refused at once.
        let stray = try StreamSocket.connect(to: server.endpoint, timeoutMilliseconds: 2000)
        try stray.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        for _ in 0..<500 where logs.withLock({ $0.count }) < 2 { Thread.sleep(forTimeInterval: 0.01) }
        #expect(logs.withLock { $0.contains { $0.contains("does not speak TLS") } }, "\(logs.withLock { $0 })")
        #expect(try server.source().bytes(region: 0, first: 3, count: 1) == chain.bytes(region: 0, first: 3, count: 1))
    }

    @Test func aTLSClientRefusesAPlaintextServerInOneLine() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, tls: false)
        let error = #expect(throws: TransportError.self) { _ = try RemotePageSource(connector: server.connector(tls: true)) }
        #expect(error.map { "\($0)" }?.contains("does not speak TLS") == true, "\(String(describing: error))")
    }

    @Test func damageOnTheWayEndsTheConnectionInsteadOfReachingTheGuest() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)
        let relay = try Relay(to: server.endpoint)
        let source = try RemotePageSource(connector: TransportFixture.connector(relay.endpoint))
        relay.corrupt(true)
        let error = #expect(throws: PageSourceError.self) { _ = try source.bytes(region: 0, first: 0, count: 1024) }
        #expect(error.map { "\($0)" }?.contains("TLS") == true, "\(String(describing: error))")
    }

    @Test func certificatesAuthenticateBothEndsWithoutASecret() throws {
        let pki = try pki()
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain, security: try certificates(pki, "server"))
        let source = try connect(server, try certificates(pki, "client"))
        #expect(try source.bytes(region: 0, first: 100, count: 64) == chain.bytes(region: 0, first: 100, count: 64))
        // The server's own certificate works as a client's too: post-copy's destination connects back to its source.
        #expect(try connect(server, try certificates(pki, "server")).manifest.fingerprint == chain.fingerprint)
    }

    @Test func certificatesThatDoNotCheckOutAreRefusedInOneLine() throws {
        let pki = try pki()
        let chain = try TransportFixture.snapshot(in: directory)
        let logs = Locked<[String]>([])
        let server = try TestServer(chain: chain, security: try certificates(pki, "server"), log: { line in logs.withLock { $0.append(line) } })
        // An expired client certificate: the server refuses it, and says why.
        let expired = #expect(throws: TransportError.self) { _ = try connect(server, try certificates(pki, "expired")) }
        #expect(expired.map { "\($0)" }?.contains("TLS with") == true, "\(String(describing: expired))")
        for _ in 0..<500 where logs.withLock({ $0.isEmpty }) { Thread.sleep(forTimeInterval: 0.01) }
        #expect(logs.withLock { $0.contains { $0.contains("certificate has expired") } }, "\(logs.withLock { $0 })")
        // A certificate another authority signed.
        let stranger = #expect(throws: TransportError.self) { _ = try connect(server, try certificates(pki, "stranger", authority: "other-ca")) }
        #expect(stranger.map { "\($0)" }?.contains("its certificate") == true, "\(String(describing: stranger))")
        // The server itself is checked too: an expired one, and one made out for another host.
        for (name, reason) in [("expired", "certificate has expired"), ("elsewhere", "mismatch")] {
            let impostor = try TestServer(chain: chain, security: try certificates(pki, name))
            let error = #expect(throws: TransportError.self) { _ = try connect(impostor, try certificates(pki, "client")) }
            #expect(error.map { "\($0)" }?.contains(reason) == true, "\(name): \(String(describing: error))")
        }
        // The real server still serves.
        #expect(try connect(server, try certificates(pki, "client")).manifest.fingerprint == chain.fingerprint)
    }

    @Test func optionsThatCannotWorkAreRefusedBeforeAnyConnection() throws {
        let pki = try pki()
        func refusal(_ options: TransportSecurity.Options) -> String {
            do { _ = try TransportSecurity.load(options) } catch { return error.description }
            return "accepted"
        }
        #expect(refusal(.init(certificate: "\(pki)/server.pem", key: "\(pki)/client.key", authority: "\(pki)/ca.pem")).contains("is not the private key of"))
        #expect(refusal(.init(certificate: "\(pki)/missing.pem", key: "\(pki)/server.key", authority: "\(pki)/ca.pem")).contains("missing.pem"))
        #expect(refusal(.init(certificate: "\(pki)/server.pem", key: "\(pki)/server.key", authority: "\(pki)/server.key")).contains("certificate authority"))
        #expect(refusal(.init(certificate: "\(pki)/server.pem")).contains("go together"))
        // A private key others may read is refused like a secret file.
        #expect(chmod("\(pki)/client.key", 0o644) == 0)
        #expect(refusal(.init(certificate: "\(pki)/client.pem", key: "\(pki)/client.key", authority: "\(pki)/ca.pem")).contains("chmod 600"))
        #expect(refusal(.init(secretFile: "/s", certificate: "\(pki)/server.pem", key: "\(pki)/server.key", authority: "\(pki)/ca.pem", insecurePlaintext: true))
            .contains("--insecure-plaintext"))
        #expect(refusal(.init()).contains("--secret-file"))
    }
}

extension TLSTests {
    @Test func aMigrationLinkRunsOverCertificatesWithoutASecret() throws {
        let pki = try pki()
        let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
        let endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
        let destinationSecurity = try certificates(pki, "server")
        let accepted = Locked<MigrationLink?>(nil)
        Thread.detachNewThread {
            let link = try? MigrationLink.accept(on: listener, security: destinationSecurity, log: { _ in })
            accepted.withLock { $0 = link }
        }
        let source = try MigrationLink.connect(to: endpoint, security: try certificates(pki, "client"))
        try source.sendReady()
        for _ in 0..<1000 where accepted.withLock({ $0 == nil }) { Thread.sleep(forTimeInterval: 0.01) }
        let destination = try #require(accepted.withLock { $0 })
        destination.setReceiveTimeout(milliseconds: 20_000)  // a hang guard
        try destination.receiveReady()
        try destination.sendRunning()
        source.setReceiveTimeout(milliseconds: 20_000)
        try source.receiveRunning()
    }
}

import LinuxSystem

/// How page serving and live migration protect their TCP streams. The default is TLS 1.3 with
/// a key derived from the shared secret as an external pre-shared key, so a `--secret-file` is
/// all either end needs; operators with a PKI give certificates instead (mutual authentication).
/// Inside TLS the page protocol's own handshake still runs, proving the secret (or, with
/// certificates and no secret, a value exported from the TLS session, which binds it to that
/// session). Plaintext exists only behind `--insecure-plaintext`, for loopback benchmarks.
package struct TransportSecurity: Sendable {
    /// The files and switches a user names; `load` checks they fit together.
    package struct Options: Sendable, Equatable {
        package var secretFile: String?
        package var certificate: String?
        package var key: String?
        package var authority: String?
        package var insecurePlaintext = false

        package init(secretFile: String? = nil, certificate: String? = nil, key: String? = nil, authority: String? = nil, insecurePlaintext: Bool = false) {
            self.secretFile = secretFile
            self.certificate = certificate
            self.key = key
            self.authority = authority
            self.insecurePlaintext = insecurePlaintext
        }

        /// Whether any certificate option was given.
        var namesCertificates: Bool { certificate != nil || key != nil || authority != nil }

        /// Why these options cannot work together, or nil; checked before anything is opened.
        package var conflict: String? {
            if namesCertificates && (certificate == nil || key == nil || authority == nil) {
                return "--tls-cert, --tls-key and --tls-ca go together (this end's certificate, its key, and the authority that signed the peer's)"
            }
            if insecurePlaintext && namesCertificates { return "--insecure-plaintext turns TLS off, so it cannot take --tls-cert, --tls-key or --tls-ca" }
            if secretFile == nil && !namesCertificates {
                return "a --secret-file (the TLS pre-shared key and the peers' proof) or --tls-cert, --tls-key and --tls-ca are needed"
            }
            return nil
        }
    }

    /// What protects the bytes on the wire: TLS with a context for each side this end plays
    /// (each costs OpenSSL a context's set-up, so an end makes only those it uses), or nothing.
    package enum Encryption: Sendable {
        case tls(client: TLSContext?, server: TLSContext?, usesCertificates: Bool)
        case plaintext
    }

    let secret: SharedSecret?
    package let encryption: Encryption

    /// The label of the pre-shared key derived from the secret: never the secret itself, so the
    /// TLS key and the inner proofs are independent uses of it.
    static let preSharedKeyLabel = "engram tls 1.3 external psk v1"
    /// The exporter label of the inner proof's secret when certificates stand in for a secret.
    static let exporterLabel = "EXPORTER-engram-inner-handshake-v1"

    package init(secret: SharedSecret?, encryption: Encryption) {
        self.secret = secret
        self.encryption = encryption
    }

    /// Reads the secret and certificates `options` name and makes the TLS contexts for `sides`,
    /// so an unusable file is refused in one line before any connection.
    package static func load(_ options: Options, sides: Set<TLSContext.Side> = [.client, .server]) throws(TransportError) -> TransportSecurity {
        if let conflict = options.conflict { throw .security(reason: conflict) }
        let secret: SharedSecret? = if let path = options.secretFile { try SharedSecret.load(path: path) } else { nil }
        if options.insecurePlaintext { return TransportSecurity(secret: secret, encryption: .plaintext) }
        let credentials: TLSCredentials
        if let certificate = options.certificate, let key = options.key, let authority = options.authority {
            // The private key is held to a secret file's rules: a key others can read is refused.
            _ = try SharedSecret.readPrivateFile(key, holding: "the private key of \(certificate)")
            credentials = .certificates(certificate: certificate, key: key, authority: authority)
        } else if let secret {
            credentials = .preSharedKey(secret.proof(preSharedKeyLabel))
        } else {
            throw .security(reason: "no credentials")
        }
        return try tls(secret: secret, credentials, sides: sides)
    }

    /// The contexts of `sides` for `credentials`; a file OpenSSL refuses is named in the error.
    private static func tls(
        secret: SharedSecret?, _ credentials: TLSCredentials, sides: Set<TLSContext.Side> = [.client, .server]
    ) throws(TransportError) -> TransportSecurity {
        do {
            let client = sides.contains(.client) ? try TLSContext(side: .client, credentials: credentials) : nil
            let server = sides.contains(.server) ? try TLSContext(side: .server, credentials: credentials) : nil
            let usesCertificates = if case .certificates = credentials { true } else { false }
            return TransportSecurity(secret: secret, encryption: .tls(client: client, server: server, usesCertificates: usesCertificates))
        } catch {
            if case .tls(_, let reason) = error { throw .security(reason: reason) }
            throw TransportError(error)
        }
    }

    /// Plaintext with `secret`: for tests and loopback benchmarks only.
    package static func plaintext(_ secret: SharedSecret) -> TransportSecurity { TransportSecurity(secret: secret, encryption: .plaintext) }

    /// TLS with `secret` as the pre-shared key: what `--secret-file` alone gives.
    package static func preSharedKey(_ secret: SharedSecret) throws(TransportError) -> TransportSecurity {
        try tls(secret: secret, .preSharedKey(secret.proof(preSharedKeyLabel)))
    }

    /// Words for logs: "TLS 1.3 (pre-shared key)", "TLS 1.3 (certificates)", "plaintext".
    package var summary: String {
        switch encryption {
        case .tls(_, _, let usesCertificates): usesCertificates ? "TLS 1.3 (certificates)" : "TLS 1.3 (pre-shared key)"
        case .plaintext: "plaintext (--insecure-plaintext)"
        }
    }

    /// A connection over `socket`, accepted (`server`) or opened to `host`; TLS starts with the
    /// first call of the page protocol's handshake.
    func connection(_ socket: StreamSocket, server: Bool, host: String? = nil) throws(TransportError) -> FramedConnection {
        guard case .tls(let client, let serverContext, _) = encryption else { return FramedConnection(socket: socket) }
        guard let context = server ? serverContext : client else {
            throw .security(reason: "TLS was set up for the \(server ? "client" : "server") side only, not to \(server ? "accept" : "open") a connection")
        }
        do {
            let session = try context.session(on: socket, peerHost: host)
            return FramedConnection(socket: socket, tls: session)
        } catch { throw TransportError(error) }
    }

    /// The secret the inner handshake proves on `connection`: the shared secret, or with
    /// certificates and no secret, keying material exported from the TLS session.
    func handshakeSecret(for connection: FramedConnection) throws(TransportError) -> SharedSecret {
        if let secret { return secret }
        guard let session = connection.tls else { throw .security(reason: "plaintext needs a --secret-file") }
        do { return SharedSecret(bytes: try session.exportKeyingMaterial(label: Self.exporterLabel, count: 32)) } catch { throw TransportError(error) }
    }
}

extension TransportSecurity {
    /// `error` from a handshake, with the likely cause when the two ends disagree on TLS: a
    /// plaintext peer, or a different secret.
    func explain(_ error: TransportError, asServer: Bool) -> TransportError {
        switch (error, encryption) {
        case (.tls(let peer, let reason), .tls(_, _, let usesCertificates)):
            let lowered = reason.lowercased()
            if ["wrong version number", "packet length too long", "http request", "record layer failure", "unexpected message"].contains(where: lowered.contains) {
                return .tls(peer: peer, reason: "\(reason): it does not speak TLS (was it started with --insecure-plaintext?)")
            }
            if !usesCertificates && ["binder", "illegal parameter", "decrypt error", "handshake failure", "no shared cipher", "no suitable"].contains(where: lowered.contains) {
                return .tls(peer: peer, reason: "\(reason): its --secret-file holds another secret, so the TLS pre-shared keys differ")
            }
            return error
        case (.socket(let peer, _, .timedOut), .tls) where asServer:
            return .tls(peer: peer, reason: "no TLS handshake within \(WireProtocol.handshakeTimeoutMilliseconds / 1000) s (is the client running with --insecure-plaintext?)")
        case (.closed(let peer), .tls) where asServer:
            return .tls(peer: peer, reason: "it closed the connection before the TLS handshake was done (is it running with --insecure-plaintext?)")
        case (.closed(let peer), .plaintext) where !asServer, (.socket(let peer, _, .timedOut), .plaintext) where !asServer:
            return .authentication(peer: peer, reason: "no HELLO came (\(error)); a server that uses TLS waits for the client to start it, and this end runs with --insecure-plaintext")
        default:
            return error
        }
    }
}

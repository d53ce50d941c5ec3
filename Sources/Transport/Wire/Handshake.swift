/// The page protocol's handshake (docs/PROTOCOL.md, "Handshake"): each side proves it knows the
/// shared secret with an HMAC over both sides' fresh nonces, so neither a client nor a server
/// without the secret gets anywhere, and an old exchange cannot be replayed.
enum Handshake {
    /// Which protocol a handshake opens: its magic and the labels each side's proof covers, so a
    /// proof made for one protocol cannot be replayed into another.
    struct Identity: Sendable {
        var magic: [UInt8]
        var version: UInt32
        var clientLabel: String
        var serverLabel: String
        /// What the peers are called in messages: "page client", "page server".
        var clientName: String
        var serverName: String

        static let pages = Identity(magic: WireProtocol.magic, version: WireProtocol.version,
                                    clientLabel: "engram page client v1", serverLabel: "engram page server v1",
                                    clientName: "page client", serverName: "page server")
    }

    static func nonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<WireProtocol.nonceSize).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    /// The server's side: HELLO out, AUTH in and checked, WELCOME (with the snapshot's
    /// fingerprint) out. Throws, after telling the client why, if the client fails. `admit` is
    /// asked once the client has proved the secret: a refusal (a full server's "busy …") is sent
    /// instead of WELCOME, so only authenticated clients count against the server's capacity.
    static func serve(
        _ connection: FramedConnection, security: TransportSecurity, fingerprint: UInt64, identity: Identity = .pages,
        admit: () -> String? = { nil }
    ) throws(TransportError) {
        do { try connection.startTLS() } catch { throw security.explain(error, asServer: true) }
        let secret = try security.handshakeSecret(for: connection)
        let serverNonce = nonce()
        var hello = ByteWriter()
        hello.append(identity.magic)
        hello.u32(identity.version)
        hello.append(serverNonce)
        try connection.sendFrame(.hello, hello.bytes)
        let payload: [UInt8]
        do { payload = try connection.readFrame(.auth, maximumLength: 8 + 4 + 64) } catch {
            connection.sendError("expected an AUTH frame: \(error)")
            throw error
        }
        guard payload.count == 8 + 4 + WireProtocol.nonceSize + WireProtocol.proofSize else {
            connection.sendError("an AUTH frame is \(8 + 4 + WireProtocol.nonceSize + WireProtocol.proofSize) bytes, not \(payload.count)")
            throw .authentication(peer: connection.peer, reason: "its AUTH frame is \(payload.count) bytes")
        }
        var reader = ByteReader(payload, peer: connection.peer)
        let magic = try reader.bytes(8, "magic")
        let version = try reader.u32("version")
        let clientNonce = try reader.bytes(WireProtocol.nonceSize, "client nonce")
        let proof = try reader.bytes(WireProtocol.proofSize, "proof")
        try reader.expectEnd("the AUTH frame")
        guard magic == identity.magic else {
            connection.sendError("not an Engram \(identity.clientName)")
            throw .authentication(peer: connection.peer, reason: "it is not an Engram \(identity.clientName)")
        }
        guard version == identity.version else {
            connection.sendError("protocol version \(version); this \(identity.serverName) speaks version \(identity.version)")
            throw .authentication(peer: connection.peer, reason: "protocol version \(version); expected \(identity.version)")
        }
        guard secret.verify(proof, identity.clientLabel, serverNonce, clientNonce) else {
            connection.sendError("authentication failed: wrong secret")
            throw .authentication(peer: connection.peer, reason: "its proof does not match the secret")
        }
        if let refusal = admit() {
            connection.sendError(refusal)
            throw .refused(peer: connection.peer, message: refusal)
        }
        var welcome = ByteWriter()
        welcome.append(secret.proof(identity.serverLabel, clientNonce, serverNonce))
        welcome.u64(fingerprint)
        try connection.sendFrame(.welcome, welcome.bytes)
    }

    /// The client's side; returns the fingerprint of the snapshot the server serves.
    static func join(_ connection: FramedConnection, security: TransportSecurity, identity: Identity = .pages) throws(TransportError) -> UInt64 {
        do { try connection.startTLS() } catch { throw security.explain(error, asServer: false) }
        let secret = try security.handshakeSecret(for: connection)
        let payload: [UInt8]
        do { payload = try connection.readFrame(.hello, maximumLength: 8 + 4 + WireProtocol.nonceSize) } catch {
            // A full server says so instead of HELLO: like a server that is away, worth retrying.
            if case .refused(let peer, let message) = error, message.hasPrefix(WireProtocol.busyMessage) { throw .busy(peer: peer) }
            throw security.explain(error, asServer: false)
        }
        var reader = ByteReader(payload, peer: connection.peer)
        guard try reader.bytes(8, "magic") == identity.magic else {
            throw .authentication(peer: connection.peer, reason: "it is not an Engram \(identity.serverName)")
        }
        let version = try reader.u32("version")
        guard version == identity.version else {
            throw .authentication(peer: connection.peer, reason: "it speaks protocol version \(version); this Engram speaks \(identity.version)")
        }
        let serverNonce = try reader.bytes(WireProtocol.nonceSize, "server nonce")
        try reader.expectEnd("the HELLO frame")
        let clientNonce = nonce()
        var auth = ByteWriter()
        auth.append(identity.magic)
        auth.u32(identity.version)
        auth.append(clientNonce)
        auth.append(secret.proof(identity.clientLabel, serverNonce, clientNonce))
        try connection.sendFrame(.auth, auth.bytes)
        let welcome: [UInt8]
        do { welcome = try connection.readFrame(.welcome, maximumLength: WireProtocol.proofSize + 8) } catch {
            // A full server says so once the secret is proved: worth retrying, as before HELLO.
            if case .refused(let peer, let message) = error, message.hasPrefix(WireProtocol.busyMessage) { throw .busy(peer: peer) }
            if case .refused(let peer, let message) = error { throw .authentication(peer: peer, reason: message) }
            throw error
        }
        var answer = ByteReader(welcome, peer: connection.peer)
        let proof = try answer.bytes(WireProtocol.proofSize, "proof")
        let fingerprint = try answer.u64("fingerprint")
        try answer.expectEnd("the WELCOME frame")
        guard secret.verify(proof, identity.serverLabel, clientNonce, serverNonce) else {
            throw .authentication(peer: connection.peer, reason: "the \(identity.serverName)'s proof does not match the secret: it is not the \(identity.serverName) you meant")
        }
        return fingerprint
    }
}

import Glibc
import LinuxSystem

/// The RFB handshake (RFC 6143 §7.1–7.3) for protocol versions 3.3, 3.7 and 3.8: version,
/// security (None without a password, VNC Authentication with one), ClientInit, ServerInit.
extension ClientConnection {
    static let serverVersion = Array("RFB 003.008\n".utf8)
    /// How long a person may take to type the password once the viewer has the challenge
    /// (viewers ask only then); the rest of the handshake has the server's handshake time.
    static let passwordMilliseconds = 60_000
    /// Wrong passwords, one at a time a second apart, whichever viewer sent them: guessing at a
    /// key of at most 8 bytes stays at one guess a second however many connections try.
    static let wrongPasswords = Locked(())
    static let securityNone: UInt8 = 1
    static let securityVNCAuthentication: UInt8 = 2

    func handshake() throws(DisplayError) {
        try send(Self.serverVersion)
        let minor = try readClientVersion()
        let security = server.password == nil ? Self.securityNone : Self.securityVNCAuthentication
        if minor >= 7 {
            try send([1, security])
            let chosen = try stream.readUInt8()
            guard chosen == security else {
                let reason = "chose security type \(chosen); the server offered only \(security)"
                if minor >= 8 { try sendSecurityFailure(reason) }
                throw .protocolViolation(peer: session.peer, reason: reason)
            }
        } else {
            // 3.3: the server decides, and says so in a u32.
            var word: [UInt8] = []
            word.appendBigEndian(UInt32(security))
            try send(word)
        }
        if let password = server.password {
            let challenge = VNCPassword.makeChallenge()
            try send(challenge)
            session.socket.setReceiveTimeout(milliseconds: Self.passwordMilliseconds)
            let answer = try stream.readBytes(VNCPassword.challengeBytes)
            guard VNCPassword.verify(answer: answer, challenge: challenge, password: password) else {
                Self.wrongPasswords.withLock { _ in usleep(1_000_000) }
                try? sendSecurityFailure(minor >= 8 ? "wrong password" : nil)
                throw .authentication(peer: session.peer, reason: "wrong password")
            }
            try send([0, 0, 0, 0])
        } else if minor >= 8 {
            // 3.8 confirms even security type None; 3.3 and 3.7 go straight on.
            try send([0, 0, 0, 0])
        }
        // ClientInit's shared flag is ignored: every viewer shares the screen, none is cut off.
        _ = try stream.readUInt8()
        try sendServerInit()
        server.log("vnc: \(session.peer) connected (RFB 3.\(minor), \(server.password == nil ? "no authentication" : "VNC authentication"))")
    }

    /// The client's "RFB 003.00x\n": 3.3, 3.7 or 3.8 (later minors speak 3.8, earlier ones 3.3).
    private func readClientVersion() throws(DisplayError) -> Int {
        let text = try stream.readBytes(12)
        let digits = { (range: Range<Int>) -> Int? in
            text[range].allSatisfy { (0x30...0x39).contains($0) } ? Int(String(decoding: text[range], as: UTF8.self)) : nil
        }
        guard Array(text[0..<4]) == Array("RFB ".utf8), text[7] == 0x2E, text[11] == 0x0A,
              let major = digits(4..<7), let minor = digits(8..<11) else {
            throw .protocolViolation(peer: session.peer, reason: "not an RFB client (expected \"RFB 003.008\\n\", got \(text.count) other bytes)")
        }
        guard major == 3 else { throw .protocolViolation(peer: session.peer, reason: "RFB version \(major).\(minor) (expected 3.3 to 3.8)") }
        return minor >= 8 ? 8 : minor == 7 ? 7 : 3
    }

    /// SecurityResult "failed", with the reason string version 3.8 carries.
    private func sendSecurityFailure(_ reason: String?) throws(DisplayError) {
        var message: [UInt8] = [0, 0, 0, 1]
        if let reason {
            message.appendBigEndian(UInt32(reason.utf8.count))
            message += Array(reason.utf8)
        }
        try send(message)
    }

    private func sendServerInit() throws(DisplayError) {
        var message: [UInt8] = []
        message.appendBigEndian(UInt16(server.view.width))
        message.appendBigEndian(UInt16(server.view.height))
        message += PixelFormat.native.encoded
        let name = Array(server.name.utf8)
        message.appendBigEndian(UInt32(name.count))
        message += name
        try send(message)
    }
}

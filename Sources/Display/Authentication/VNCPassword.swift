/// VNC Authentication (RFB security type 2): the server sends 16 random bytes, the client
/// answers with them DES-encrypted under the password.
///
/// The key is the password's first 8 bytes, NUL-padded, with the bits of each byte reversed (a
/// quirk of the original implementation every client copies). Longer passwords are cut to 8.
package enum VNCPassword {
    package static let challengeBytes = 16

    /// The answer a client holding `password` gives to `challenge` (16 bytes).
    package static func response(challenge: [UInt8], password: [UInt8]) -> [UInt8] {
        precondition(challenge.count == challengeBytes, "a VNC challenge is \(challengeBytes) bytes")
        let key = (0..<8).map { index in index < password.count ? reversedBits(password[index]) : 0 }
        return DES.encrypt(block: Array(challenge[0..<8]), key: key) + DES.encrypt(block: Array(challenge[8..<16]), key: key)
    }

    /// True when `answer` is the right response; compares every byte (no early exit) so the
    /// time taken says nothing about how much was right.
    package static func verify(answer: [UInt8], challenge: [UInt8], password: [UInt8]) -> Bool {
        let expected = response(challenge: challenge, password: password)
        guard answer.count == expected.count else { return false }
        var difference: UInt8 = 0
        for index in expected.indices { difference |= expected[index] ^ answer[index] }
        return difference == 0
    }

    /// A fresh random challenge (the system generator reads getrandom(2)).
    package static func makeChallenge() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<challengeBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func reversedBits(_ byte: UInt8) -> UInt8 {
        var input = byte, output: UInt8 = 0
        for _ in 0..<8 {
            output = output << 1 | input & 1
            input >>= 1
        }
        return output
    }
}

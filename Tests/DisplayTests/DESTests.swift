@testable import Display
import Testing

@Suite struct DESTests {
    static func hex(_ text: String) -> [UInt8] {
        stride(from: 0, to: text.count, by: 2).map { offset in
            let start = text.index(text.startIndex, offsetBy: offset)
            return UInt8(text[start..<text.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    /// Published single-DES vectors: the textbook example, the all-zero key, "Now is t".
    @Test(arguments: [
        ("133457799BBCDFF1", "0123456789ABCDEF", "85E813540F0AB405"),
        ("0000000000000000", "0000000000000000", "8CA64DE9C1B123A7"),
        ("FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF", "7359B2163E4EDC58"),
        ("0123456789ABCDEF", "4E6F772069732074", "3FA40E8A984D4815"),
        ("0E329232EA6D0D73", "8787878787878787", "0000000000000000"),
    ])
    func publishedVectors(key: String, plaintext: String, ciphertext: String) {
        #expect(DES.encrypt(block: Self.hex(plaintext), key: Self.hex(key)) == Self.hex(ciphertext))
    }

    @Test func parityBitsAreIgnored() {
        let key = Self.hex("133457799BBCDFF1"), plain = Self.hex("0123456789ABCDEF")
        #expect(DES.encrypt(block: plain, key: key.map { $0 ^ 1 }) == DES.encrypt(block: plain, key: key))
    }

    /// Responses computed by vncdotool (des_encrypt(_vnc_des(password), challenge)).
    @Test func vncResponsesMatchAnotherClient() {
        #expect(VNCPassword.response(challenge: Array(0..<16), password: Array("secret".utf8))
            == Self.hex("EE22539F33A5983EC12F9C2EDBC995DD"))
        // Only the first 8 bytes of a password count.
        #expect(VNCPassword.response(challenge: [UInt8](repeating: 0xAA, count: 16), password: Array("password12345".utf8))
            == Self.hex("20AB5B3DC7B9B4B620AB5B3DC7B9B4B6"))
        #expect(VNCPassword.response(challenge: Array(0..<16), password: Array("password".utf8))
            == VNCPassword.response(challenge: Array(0..<16), password: Array("password-and-more".utf8)))
    }

    @Test func roundTripAcceptsTheRightPasswordOnly() {
        let challenge = VNCPassword.makeChallenge()
        let answer = VNCPassword.response(challenge: challenge, password: Array("hunter2".utf8))
        #expect(VNCPassword.verify(answer: answer, challenge: challenge, password: Array("hunter2".utf8)))
        #expect(!VNCPassword.verify(answer: answer, challenge: challenge, password: Array("hunter3".utf8)))
        #expect(!VNCPassword.verify(answer: Array(answer.dropLast()), challenge: challenge, password: Array("hunter2".utf8)))
        #expect(VNCPassword.makeChallenge() != challenge)
    }

    @Test func keyBitsAreReversed() {
        #expect(VNCPassword.reversedBits(0x01) == 0x80)
        #expect(VNCPassword.reversedBits(0b1100_1010) == 0b0101_0011)
    }
}

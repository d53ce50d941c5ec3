/// Percent-encoding exactly as Signature Version 4 wants it: every byte but the unreserved
/// characters (A-Z a-z 0-9 - . _ ~) as %XX in upper-case hex.
///
/// The same text is both signed and sent, so the server's canonical form of what it received
/// equals ours; Foundation's encoders leave other characters (such as '+', '!', '*') alone and
/// would make such keys fail with SignatureDoesNotMatch.
enum URIEncoding {
    /// One query-string name or value, or one path segment.
    static func encode(_ text: String) -> String {
        encode(text, keepingSlash: false)
    }

    /// An object path, its '/' separators kept (S3 does not encode them, nor encode twice).
    static func encodePath(_ text: String) -> String {
        encode(text, keepingSlash: true)
    }

    /// Query parameters with names and values encoded, sorted by name then value. Encoded text is
    /// ASCII, so String's ordering here is the byte order the signature wants.
    static func encodedSorted(_ query: [(name: String, value: String)]) -> [(name: String, value: String)] {
        let encoded: [(name: String, value: String)] = query.map { (pair: (name: String, value: String)) -> (name: String, value: String) in
            (name: encode(pair.name), value: encode(pair.value))
        }
        return encoded.sorted { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
    }

    private static func encode(_ text: String, keepingSlash: Bool) -> String {
        let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if isUnreserved(byte) || (keepingSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0f)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// Formats bytes as `hexdump -C` does: an address, 16 bytes in hex, and their printable characters.
package enum HexDump {
    package static func lines(_ bytes: [UInt8], startingAt address: UInt64) -> [String] {
        stride(from: 0, to: bytes.count, by: 16).map { start in
            let row = bytes[start..<min(start + 16, bytes.count)]
            var hex = row.enumerated().map { (index, byte) in
                (index == 8 ? " " : "") + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }.joined(separator: " ")
            let width = 16 * 3
            if hex.count < width { hex += String(repeating: " ", count: width - hex.count) }
            let text = String(row.map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." })
            return "\(hexAddress(address + UInt64(start))): \(hex) |\(text)|"
        }
    }

    package static func hexAddress(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

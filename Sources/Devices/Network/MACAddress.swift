import LinuxSystem

/// An Ethernet address, as the guest's network device reports it.
package struct MACAddress: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    package let bytes: [UInt8]

    /// Six bytes; nil for any other count.
    package init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses `aa:bb:cc:dd:ee:ff` (hex, either case).
    package init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// A random locally administered unicast address (what a VMM picks when the user gives none).
    package static func random() -> MACAddress {
        var bytes = [UInt8](repeating: 0, count: 6)
        SystemRandom.fill(&bytes, at: 0, count: 6)
        bytes[0] = bytes[0] & 0xfe | 0x02
        return MACAddress(bytes: bytes)!
    }

    /// The group bit: such an address names many stations and cannot be a device's own.
    package var isMulticast: Bool { bytes[0] & 1 != 0 }

    package var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    package init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let address = MACAddress(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\"\(text)\" is not a MAC address (aa:bb:cc:dd:ee:ff)"))
        }
        self = address
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// One named, versioned piece of saved state (docs/FORMAT.md "Sections"): a device, the vCPUs,
/// the irqchip, the clock, or the machine's configuration. Each evolves on its own version.
package struct StateSection: Sendable, Equatable {
    /// 1 to 32 bytes of `a`–`z`, `0`–`9`, `.`, `-` and `_`; unique in its container.
    package let name: String
    package let version: UInt32
    package let payload: [UInt8]

    package init(name: String, version: UInt32, payload: [UInt8]) {
        self.name = name
        self.version = version
        self.payload = payload
    }

    /// True if `name` is a section name the format allows.
    package static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        return (1...StateSections.nameLength).contains(bytes.count) && bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

import GuestMemory

/// The working-set file (docs/PROTOCOL.md, "Working-set file"): also the body of the page
/// server's working-set messages.
///
/// ```
/// 0   8  magic "ENGRAMWS"
/// 8   4  version (1)
/// 12  4  page count n (at most 2^20)
/// 16  8  snapshot fingerprint
/// 24  4  recorded milliseconds
/// 28  4  reserved (0)
/// 32  8n pages: region << 56 | page, little-endian, first touch first
/// end 4  CRC32C of every byte before it
/// ```
extension WorkingSet {
    package static let magic = Array("ENGRAMWS".utf8)
    package static let version: UInt32 = 1
    static let headerSize = 32

    /// The encoded bytes.
    package func encoded() -> [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.headerSize + pages.count * 8 + 4)
        append(Self.version, to: &bytes)
        append(UInt32(pages.count), to: &bytes)
        append(fingerprint, to: &bytes)
        append(recordedMilliseconds, to: &bytes)
        append(UInt32(0), to: &bytes)
        for page in pages { append(page.packed, to: &bytes) }
        append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// Decodes `bytes`, checking magic, version, length, CRC, bounds and duplicates; `origin` names them in errors.
    package init(decoding bytes: [UInt8], origin: String) throws(PageSourceError) {
        func fail(_ reason: String) -> PageSourceError { .workingSet("\(origin) is not a usable working set: \(reason)") }
        guard bytes.count >= Self.headerSize + 4, Array(bytes[0..<8]) == Self.magic else {
            throw fail("it does not start with ENGRAMWS")
        }
        let version = Self.u32(bytes, 8)
        guard version == Self.version else { throw fail("format version \(version); this Engram reads version \(Self.version)") }
        let count = Int(Self.u32(bytes, 12))
        guard count <= Self.maximumPages else { throw fail("it lists \(count) pages; at most \(Self.maximumPages) are allowed") }
        guard bytes.count == Self.headerSize + count * 8 + 4 else {
            throw fail("it is \(bytes.count) bytes; \(count) pages need \(Self.headerSize + count * 8 + 4)")
        }
        let stored = Self.u32(bytes, bytes.count - 4)
        let computed = CRC32C.checksum(Array(bytes[0..<bytes.count - 4]))
        guard stored == computed else { throw fail("CRC32C mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))") }
        var pages: [PageReference] = []
        pages.reserveCapacity(count)
        var seen = Set<UInt64>(minimumCapacity: count)
        for index in 0..<count {
            let packed = Self.u64(bytes, Self.headerSize + index * 8)
            guard seen.insert(packed).inserted else { throw fail("page \(packed & PageReference.maximumPage.rawValue) of region \(packed >> 56) is listed twice") }
            pages.append(PageReference(packed: packed))
        }
        self.init(fingerprint: Self.u64(bytes, 16), pages: pages, recordedMilliseconds: Self.u32(bytes, 24))
    }

    private func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    private static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    private static func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }
}

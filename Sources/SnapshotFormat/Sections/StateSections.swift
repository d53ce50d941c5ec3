import GuestMemory

/// A container of state sections (docs/FORMAT.md "Sections"): the configuration area and the
/// state area of a version 2 snapshot, and the machine state a migration or page server carries.
///
/// Layout: magic `ENGRAMSS`, u32 section count, u32 reserved (0), then per section a 48-byte
/// entry (name zero-padded to 32 bytes, u32 version, u32 CRC32C of the payload, u64 payload
/// length), then the payloads back to back in entry order; the container ends with the last.
package struct StateSections: Sendable, Equatable {
    package private(set) var sections: [StateSection]

    package static let magic: [UInt8] = Array("ENGRAMSS".utf8)
    package static let nameLength = 32
    static let entryLength = 48
    static let headerLength = 16
    /// Most sections one container holds.
    package static let maximumCount = 4096

    /// The section that carries a version 1 file's JSON machine state unchanged (version 2 of
    /// that JSON), so a merge or a page server passes it on and a restore still reads it.
    package static let legacyMachineJSON = "machine-json"

    package init(_ sections: [StateSection] = []) { self.sections = sections }

    /// The section called `name`.
    package subscript(name: String) -> StateSection? { sections.first { $0.name == name } }

    /// True if `bytes` starts like a container (and not like the JSON of version 1 files).
    package static func looksLikeContainer(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }

    /// The container's bytes; the names must be valid and unique (the caller's programming).
    package func encoded() -> [UInt8] {
        var buffer = LittleEndianBuffer(count: Self.headerLength + Self.entryLength * sections.count)
        buffer.setBytes(Self.magic, at: 0)
        buffer.setU32(UInt32(sections.count), at: 8)
        for (i, section) in sections.enumerated() {
            precondition(StateSection.isValidName(section.name), "invalid section name \(section.name)")
            let base = Self.headerLength + Self.entryLength * i
            buffer.setBytes(Array(section.name.utf8), at: base)
            buffer.setU32(section.version, at: base + 32)
            buffer.setU32(CRC32C.checksum(section.payload), at: base + 36)
            buffer.setU64(UInt64(section.payload.count), at: base + 40)
        }
        var bytes = buffer.bytes
        for section in sections { bytes += section.payload }
        return bytes
    }

    /// Decodes and checks a container: magic, counts, names, lengths, every section's CRC, and
    /// that the bytes end with the last payload. `what` names the container in messages.
    package init(decoding bytes: [UInt8], what: String) throws(SectionError) {
        guard bytes.count >= Self.headerLength, bytes.starts(with: Self.magic) else {
            throw .malformed(what, "does not start with the section container magic ENGRAMSS")
        }
        let buffer = LittleEndianBuffer(bytes: bytes)
        let count = Int(buffer.u32(at: 8))
        guard buffer.u32(at: 12) == 0 else { throw .malformed(what, "has a non-zero reserved field") }
        guard count <= Self.maximumCount, Self.headerLength + Self.entryLength * count <= bytes.count else {
            throw .malformed(what, "claims \(count) sections, more than its \(bytes.count) bytes can hold")
        }
        var cursor = Self.headerLength + Self.entryLength * count
        var sections: [StateSection] = []
        var names = Set<String>()
        for i in 0..<count {
            let base = Self.headerLength + Self.entryLength * i
            guard let name = buffer.paddedText(at: base, count: Self.nameLength), StateSection.isValidName(name) else {
                throw .malformed(what, "section entry \(i) has no valid name (1 to 32 of a-z 0-9 . - _, zero padded)")
            }
            guard names.insert(name).inserted else { throw .malformed(what, "has section \(name) twice") }
            let length = buffer.u64(at: base + 40)
            guard length <= UInt64(bytes.count - cursor) else {
                throw .malformed(what, "section \(name) is \(length) bytes, past the container's end")
            }
            let payload = Array(bytes[cursor..<cursor + Int(length)])
            let stored = buffer.u32(at: base + 36)
            let computed = CRC32C.checksum(payload)
            guard stored == computed else { throw .checksum(what, section: name, stored: stored, computed: computed) }
            sections.append(StateSection(name: name, version: buffer.u32(at: base + 32), payload: payload))
            cursor += Int(length)
        }
        guard cursor == bytes.count else {
            throw .malformed(what, "has \(bytes.count - cursor) bytes after its last section; expected none")
        }
        self.sections = sections
    }

    /// This container followed by `other`'s sections (names must stay unique).
    package func merged(with other: StateSections) -> StateSections { StateSections(sections + other.sections) }
}

/// Why a section container or a section's payload was refused; names the container and section.
package enum SectionError: Error, Equatable, CustomStringConvertible {
    case malformed(String, String)
    case checksum(String, section: String, stored: UInt32, computed: UInt32)
    /// A section this Engram does not know.
    case unknownSection(String, section: String)
    /// A section of a newer version than this Engram reads.
    case newerVersion(String, section: String, version: UInt32, readable: UInt32)
    /// A section that must be there is not.
    case missingSection(String, section: String)
    /// A payload that does not decode.
    case payload(String, section: String, problem: String)

    package var description: String {
        switch self {
        case .malformed(let what, let reason): "\(what) \(reason)"
        case .checksum(let what, let section, let stored, let computed):
            "\(what): section \(section) is corrupt: CRC32C 0x\(String(computed, radix: 16)), entry says 0x\(String(stored, radix: 16))"
        case .unknownSection(let what, let section):
            "\(what) has section \(section), which this Engram does not know (written by a newer Engram, or with a device this one lacks)"
        case .newerVersion(let what, let section, let version, let readable):
            "\(what): section \(section) is version \(version); this Engram reads up to version \(readable)"
        case .missingSection(let what, let section): "\(what) lacks section \(section)"
        case .payload(let what, let section, let problem): "\(what): section \(section) does not decode: \(problem)"
        }
    }
}

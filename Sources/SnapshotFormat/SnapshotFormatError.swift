import LinuxSystem
import Glibc
import GuestMemory
import SystemPackage

/// Why a snapshot could not be written or read; each message names the file and what was expected.
package enum SnapshotFormatError: Error, CustomStringConvertible, Equatable {
    /// A system call on `path` failed.
    case systemCall(path: String, name: String, errno: Int32)
    /// The file ends before `expected` bytes.
    case truncated(path: String, expected: UInt64, found: UInt64)
    /// The first 8 bytes are not `ENGRAMSN`.
    case badMagic(path: String)
    /// The file is from a newer Engram.
    case newerVersion(path: String, version: UInt32)
    /// The version field is 0, which no Engram writes.
    case invalidVersion(path: String, version: UInt32)
    /// The endianness marker is not 0x01020304.
    case wrongEndianness(path: String, found: UInt32)
    /// The header's CRC32C does not match its bytes.
    case headerChecksum(path: String, stored: UInt32, computed: UInt32)
    /// A header or region-table field has a value the format does not allow.
    case invalidField(path: String, field: String, reason: String)
    /// An area described by the header lies (partly) outside the file.
    case outsideFile(path: String, area: String, offset: UInt64, length: UInt64, fileSize: UInt64)
    /// An area's offset is not on the boundary the format requires.
    case misaligned(path: String, area: String, offset: UInt64, alignment: UInt64)
    /// Two areas of the file overlap.
    case overlap(path: String, first: String, second: String)
    /// An offset plus a length does not fit in 64 bits.
    case arithmeticOverflow(path: String, area: String)
    /// The state section is bigger than the cap.
    case stateTooLarge(path: String, length: UInt64, cap: UInt64)
    /// The state section's CRC32C does not match.
    case stateChecksum(path: String, stored: UInt32, computed: UInt32)
    /// The configuration area's CRC32C does not match.
    case configurationChecksum(path: String, stored: UInt32, computed: UInt32)
    /// A bitmap's or CRC table's CRC32C does not match its region entry.
    case tableChecksum(path: String, table: String, stored: UInt32, computed: UInt32)
    /// A configuration or state section container, or a section in it, is malformed.
    case sections(SectionError)
    /// Writing would replace a snapshot other snapshots depend on, or a file that must not be replaced.
    case refusedPath(path: String, reason: String)
    /// A page's CRC32C does not match the CRC table.
    case pageChecksum(path: String, region: String, page: PageIndex, stored: UInt32, computed: UInt32)
    /// A page number past the end of a region.
    case pageOutOfRange(path: String, region: String, page: PageIndex, pageCount: UInt64)
    /// What the writer was asked to write cannot be expressed in the format.
    case unwritable(path: String, reason: String)
    /// Guest memory refused an access while writing.
    case memory(path: String, GuestMemoryError)
    /// A diff snapshot's chain of parents is broken (missing, looping, too long, different regions).
    case chain(path: String, reason: String)

    package var description: String {
        switch self {
        case .systemCall(let path, let name, let errno):
            "snapshot \(path): \(name) failed: \(Errno(rawValue: errno)) (errno \(errno))"
        case .truncated(let path, let expected, let found):
            "snapshot \(path) is truncated: it is \(found) bytes, expected at least \(expected)"
        case .badMagic(let path):
            "\(path) is not an Engram snapshot: expected the magic ENGRAMSN at offset 0"
        case .newerVersion(let path, let version):
            "snapshot \(path) was written by a newer Engram (format version \(version)); this Engram reads versions \(SnapshotLayout.firstVersion) to \(SnapshotLayout.formatVersion)"
        case .invalidVersion(let path, let version):
            "snapshot \(path) has format version \(version); expected \(SnapshotLayout.firstVersion) to \(SnapshotLayout.formatVersion)"
        case .wrongEndianness(let path, let found):
            "snapshot \(path) has endianness marker 0x\(String(found, radix: 16)); expected 0x1020304 (little-endian)"
        case .headerChecksum(let path, let stored, let computed):
            "snapshot \(path) header is corrupt: CRC32C 0x\(String(computed, radix: 16)), header says 0x\(String(stored, radix: 16))"
        case .invalidField(let path, let field, let reason):
            "snapshot \(path): \(field) \(reason)"
        case .outsideFile(let path, let area, let offset, let length, let fileSize):
            "snapshot \(path): \(area) at offset \(offset) length \(length) lies outside the \(fileSize)-byte file"
        case .misaligned(let path, let area, let offset, let alignment):
            "snapshot \(path): \(area) offset \(offset) is not a multiple of \(alignment)"
        case .overlap(let path, let first, let second):
            "snapshot \(path): \(first) overlaps \(second); expected disjoint areas"
        case .arithmeticOverflow(let path, let area):
            "snapshot \(path): \(area) offset plus length overflows 64 bits"
        case .stateTooLarge(let path, let length, let cap):
            "snapshot \(path): state section is \(length) bytes; at most \(cap) allowed"
        case .stateChecksum(let path, let stored, let computed):
            "snapshot \(path) state section is corrupt: CRC32C 0x\(String(computed, radix: 16)), header says 0x\(String(stored, radix: 16))"
        case .configurationChecksum(let path, let stored, let computed):
            "snapshot \(path) configuration section is corrupt: CRC32C 0x\(String(computed, radix: 16)), header says 0x\(String(stored, radix: 16))"
        case .tableChecksum(let path, let table, let stored, let computed):
            "snapshot \(path): \(table) is corrupt: CRC32C 0x\(String(computed, radix: 16)), region table says 0x\(String(stored, radix: 16))"
        case .sections(let error): "\(error)"
        case .refusedPath(let path, let reason): "refusing to write \(path): \(reason)"
        case .pageChecksum(let path, let region, let page, let stored, let computed):
            "snapshot \(path): region \(region) page \(page) is corrupt: CRC32C 0x\(String(computed, radix: 16)), table says 0x\(String(stored, radix: 16))"
        case .pageOutOfRange(let path, let region, let page, let pageCount):
            "snapshot \(path): region \(region) has \(pageCount) pages; page \(page) does not exist"
        case .unwritable(let path, let reason):
            "cannot write snapshot \(path): \(reason)"
        case .memory(let path, let error):
            "cannot write snapshot \(path): \(error)"
        case .chain(let path, let reason):
            "snapshot \(path) \(reason)"
        }
    }
}

extension SnapshotFormatError {
    /// A failed system call on a snapshot file.
    package init(_ error: SystemError) {
        if let refusal = error.refusal {
            self = .refusedPath(path: error.subject, reason: refusal)
            return
        }
        self = .systemCall(path: error.subject, name: error.call, errno: error.errno.rawValue)
    }
}

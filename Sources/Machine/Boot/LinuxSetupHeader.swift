/// The parts of a bzImage's setup header (Documentation/arch/x86/boot.rst) the loader needs.
struct LinuxSetupHeader {
    static let magicOffset = 0x202
    static let magic: UInt32 = 0x5372_6448  // "HdrS"
    /// The header runs from 0x1f1 to 0x202 + the byte at 0x201.
    static let start = 0x1f1

    var setupSectors: Int
    var protocolVersion: UInt16
    var loadFlags: UInt8
    var initrdAddressMaximum: UInt32
    var commandLineSizeMaximum: UInt32
    var kernelAlignment: UInt32
    var initSize: UInt32
    /// Where the compressed kernel starts inside the protected-mode image, and its length.
    var payloadOffset: UInt32
    var payloadLength: UInt32
    var headerBytes: [UInt8]

    /// Parses and checks the header; the reason names what is wrong.
    init(_ bytes: [UInt8]) throws(BzImageError) {
        let reader = ByteReader(bytes: bytes)
        guard let jump = reader.get(UInt8.self, at: 0x201), let version = reader.get(UInt16.self, at: 0x206),
              let sectors = reader.get(UInt8.self, at: 0x1f1), let flags = reader.get(UInt8.self, at: 0x211) else {
            throw .truncated
        }
        let end = 0x202 + Int(jump)
        guard end <= bytes.count else { throw .truncated }
        guard version >= 0x020c else { throw .tooOld(version) }
        guard flags & 0x01 != 0 else { throw .notLoadedHigh }
        let xloadflags = reader.get(UInt16.self, at: 0x236) ?? 0
        guard xloadflags & 0x1 != 0 else { throw .no64BitEntry }
        setupSectors = sectors == 0 ? 4 : Int(sectors)
        protocolVersion = version
        loadFlags = flags
        initrdAddressMaximum = reader.get(UInt32.self, at: 0x22c) ?? 0x37ff_ffff
        commandLineSizeMaximum = reader.get(UInt32.self, at: 0x238) ?? 255
        kernelAlignment = reader.get(UInt32.self, at: 0x230) ?? 0x20_0000
        initSize = reader.get(UInt32.self, at: 0x260) ?? 0
        payloadOffset = reader.get(UInt32.self, at: 0x248) ?? 0
        payloadLength = reader.get(UInt32.self, at: 0x24c) ?? 0
        headerBytes = Array(bytes[Self.start..<end])
    }
}

/// What is wrong with a bzImage's setup header.
enum BzImageError: Error, CustomStringConvertible {
    case truncated, tooOld(UInt16), notLoadedHigh, no64BitEntry

    var description: String {
        switch self {
        case .truncated: "bzImage setup header is truncated"
        case .tooOld(let version): "boot protocol \(version >> 8).\(version & 0xff) is too old; Engram needs 2.12 or later"
        case .notLoadedHigh: "bzImage does not load at 1 MiB (LOADED_HIGH unset)"
        case .no64BitEntry: "bzImage has no 64-bit entry point (XLF_KERNEL_64 unset)"
        }
    }
}

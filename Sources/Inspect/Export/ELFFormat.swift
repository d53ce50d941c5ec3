/// The numbers of the ELF64 core format (System V gABI, Linux `elf.h`) that the core writer and
/// reader share, so the two cannot drift apart.
enum ELFFormat {
    static let magic: [UInt8] = [0x7F, 0x45, 0x4C, 0x46]
    static let class64: UInt8 = 2
    static let littleEndian: UInt8 = 1
    static let currentVersion: UInt8 = 1
    static let typeCore: UInt16 = 4
    static let machineX86_64: UInt16 = 62
    static let machine386: UInt16 = 3

    static let headerSize = 64
    static let programHeaderSize = 56
    static let sectionHeaderSize = 64
    /// `PN_XNUM`: e_phnum saying the real count is in section header 0's sh_info.
    static let extendedCount: UInt16 = 0xFFFF

    static let segmentLoad: UInt32 = 1
    static let segmentNote: UInt32 = 4

    /// Elf64_Nhdr: n_namesz, n_descsz, n_type, each 32 bits.
    static let noteHeaderSize = 12
    static let notePRStatus: UInt32 = 1

    /// Offsets of Elf64_Ehdr fields.
    enum Header {
        static let type = 16, machine = 18, version = 20, phoff = 32, shoff = 40
        static let ehsize = 52, phentsize = 54, phnum = 56, shentsize = 58, shnum = 60
    }

    /// Offsets of Elf64_Phdr fields.
    enum ProgramHeader {
        static let type = 0, offset = 8, vaddr = 16, paddr = 24, filesz = 32, memsz = 40, align = 48
    }

    /// Offset of sh_info in Elf64_Shdr (where PN_XNUM puts the program header count).
    static let sectionInfoOffset = 44

    /// `value` rounded up to a multiple of 4, as note names and descriptors are padded.
    static func noteAligned(_ value: Int) -> Int { (value + 3) & ~3 }
}

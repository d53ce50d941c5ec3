import LinuxSystem
/// The constants of QEMU's migration stream (`migration/savevm.c`, `migration/ram.c`, QEMU 7.2),
/// named here once so the parser reads like the format.
enum MigrationStreamFormat {
    /// "QEVM", then version 3: every stream since QEMU 0.13.
    static let magic: UInt32 = 0x5145_564D
    static let version: UInt32 = 3

    /// The byte before each top-level record.
    enum SectionType: UInt8 {
        case endOfFile = 0x00
        case start = 0x01
        case part = 0x02
        case end = 0x03
        case full = 0x04
        case subsection = 0x05
        case vmDescription = 0x06
        case configuration = 0x07
        case command = 0x08
        case footer = 0x7E
    }

    /// `QEMU_VM_COMMAND` subcommands that matter here (enum qemu_vm_cmd).
    enum Command {
        static let openReturnPath: UInt16 = 1
        static let ping: UInt16 = 2
        static let postcopyAdvise: UInt16 = 3
        /// Sent by QEMU 10+ machine types just before the final RAM pass; it carries nothing.
        static let switchoverStart: UInt16 = 11
    }

    /// The `ram` section's version; other versions lay out their records differently.
    static let ramSectionVersion: UInt32 = 4

    /// Flags in the low bits of each RAM record's be64 `address | flags` word.
    enum RAMFlag {
        static let full: UInt64 = 0x01
        static let zero: UInt64 = 0x02
        static let memorySize: UInt64 = 0x04
        static let page: UInt64 = 0x08
        static let endOfSection: UInt64 = 0x10
        static let `continue`: UInt64 = 0x20
        static let xbzrle: UInt64 = 0x40
        static let hook: UInt64 = 0x80
        static let compressedPage: UInt64 = 0x100
        static let multifdFlush: UInt64 = 0x200
    }
    static let flagMask: UInt64 = PageSize.bytes64 - 1

    /// Longest machine type name accepted from a CONFIGURATION section (QEMU's are < 40 bytes);
    /// a larger length is damage, not a name to allocate for.
    static let maximumMachineNameLength: UInt32 = 256
    /// Most capability names a CONFIGURATION section may list (QEMU 7.2 has 20-odd capabilities).
    static let maximumCapabilityCount: UInt32 = 256
}

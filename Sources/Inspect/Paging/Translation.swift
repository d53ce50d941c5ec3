/// Where one virtual address lands, and how the walk got there, so a tool can show each entry
/// it read and a caller can move a whole page at a time.
package struct Translation: Sendable, Equatable {
    /// One table entry a walk read.
    package struct Step: Sendable, Equatable {
        /// "PML5", "PML4", "PDPT", "PD" or "PT".
        package var level: String
        /// Guest-physical address of the entry.
        package var entryAddress: UInt64
        /// The entry as read (4 bytes widened for 32-bit paging).
        package var entry: UInt64

        package init(level: String, entryAddress: UInt64, entry: UInt64) {
            self.level = level
            self.entryAddress = entryAddress
            self.entry = entry
        }
    }

    package static let size4KiB: UInt64 = 1 << 12
    package static let size2MiB: UInt64 = 1 << 21
    package static let size4MiB: UInt64 = 1 << 22
    package static let size1GiB: UInt64 = 1 << 30

    package var virtual: UInt64
    package var physical: UInt64
    /// Size of the page mapping `virtual`: 4 KiB, 2 MiB, 4 MiB or 1 GiB (4 KiB without paging).
    package var pageSize: UInt64
    /// The entries read, top level first; empty when paging is off.
    package var steps: [Step]

    package init(virtual: UInt64, physical: UInt64, pageSize: UInt64, steps: [Step]) {
        self.virtual = virtual
        self.physical = physical
        self.pageSize = pageSize
        self.steps = steps
    }

    /// How many levels the walk read.
    package var levels: Int { steps.count }

    /// Bytes from `physical` to the end of its page: how far a read may go on this translation.
    package var bytesLeftInPage: UInt64 { pageSize - (virtual & (pageSize - 1)) }
}

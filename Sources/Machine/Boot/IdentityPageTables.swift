import GuestMemory

/// Identity page tables covering the first 4 GiB with 2 MiB pages, for the 64-bit Linux entry.
enum IdentityPageTables {
    static let directoryCount = 4

    /// PML4, PDPT and four page directories, contiguous from `X86Layout.pageTablesAddress`.
    static func bytes() -> [UInt8] {
        let base = X86Layout.pageTablesAddress.rawValue
        var tables = ByteWriter(count: 4096 * (2 + directoryCount))
        tables.put(base + 0x1000 | 0x3, at: 0)                               // PML4[0] → PDPT, present+writable
        for directory in 0..<directoryCount {
            tables.put(base + UInt64(0x2000 + directory * 0x1000) | 0x3, at: 0x1000 + directory * 8)
            for entry in 0..<512 {
                let address = UInt64(directory * 512 + entry) << 21
                tables.put(address | 0x83, at: 0x2000 + directory * 0x1000 + entry * 8)  // present+writable+2 MiB
            }
        }
        return tables.bytes
    }
}

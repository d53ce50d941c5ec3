import GuestMemory

/// Builds the PVH `hvm_start_info` (version 1), its memory map and module list.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336e_c578

    /// The start_info bytes for `pvhStartInfoAddress`, the memmap for `pvhMemoryMapAddress`, and the modules.
    static func build(memoryMap: [E820Entry], initrd: (address: UInt64, size: UInt64)?) -> (info: [UInt8], memoryMap: [UInt8], modules: [UInt8]) {
        var info = ByteWriter(count: 56)
        info.put(magic, at: 0)
        info.put(UInt32(1), at: 4)                                   // version
        info.put(UInt32(initrd == nil ? 0 : 1), at: 12)              // nr_modules
        info.put(X86Layout.pvhModuleListAddress.rawValue, at: 16)    // modlist_paddr
        info.put(X86Layout.commandLineAddress.rawValue, at: 24)      // cmdline_paddr
        info.put(X86Layout.pvhMemoryMapAddress.rawValue, at: 40)     // memmap_paddr
        info.put(UInt32(memoryMap.count), at: 48)                    // memmap_entries

        var map = ByteWriter(count: 24 * memoryMap.count)
        for (index, entry) in memoryMap.enumerated() {
            map.put(entry.address, at: index * 24)
            map.put(entry.sizeInBytes, at: index * 24 + 8)
            map.put(entry.kind.rawValue, at: index * 24 + 16)
        }
        var modules = ByteWriter(count: 32)
        if let initrd {
            modules.put(initrd.address, at: 0)
            modules.put(initrd.size, at: 8)
        }
        return (info.bytes, map.bytes, modules.bytes)
    }
}

import GuestMemory

/// Builds Linux's zero page (struct boot_params): setup header, command line, initrd, e820 map.
enum LinuxBootParams {
    static func build(header: LinuxSetupHeader, commandLineLength: Int, initrd: (address: UInt64, size: UInt64)?,
                      memoryMap: [E820Entry]) -> [UInt8] {
        var page = ByteWriter(count: 4096)
        page.put(header.headerBytes, at: LinuxSetupHeader.start)
        page.put(UInt8(0xff), at: 0x210)                          // type_of_loader: undefined boot loader
        page.put(header.loadFlags | 0x80, at: 0x211)              // CAN_USE_HEAP
        page.put(UInt16(0xfe00), at: 0x224)                       // heap_end_ptr
        page.put(UInt32(X86Layout.commandLineAddress.rawValue), at: 0x228)
        page.put(UInt32(commandLineLength), at: 0x238)
        if let initrd {
            page.put(UInt32(initrd.address), at: 0x218)
            page.put(UInt32(initrd.size), at: 0x21c)
        }
        let entries = memoryMap.prefix(128)
        page.put(UInt8(entries.count), at: 0x1e8)
        for (index, entry) in entries.enumerated() {
            let offset = 0x2d0 + index * 20
            page.put(entry.address, at: offset)
            page.put(entry.sizeInBytes, at: offset + 8)
            page.put(entry.kind.rawValue, at: offset + 16)
        }
        return page.bytes
    }
}

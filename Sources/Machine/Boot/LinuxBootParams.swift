import Devices
import GuestMemory

/// Builds Linux's zero page (struct boot_params): setup header, command line, initrd, e820 map.
enum LinuxBootParams {
    static func build(header: LinuxSetupHeader, commandLineLength: Int, initrd: (address: UInt64, size: UInt64)?,
                      memoryMap: [E820Entry], framebuffer: FramebufferGeometry? = nil, rsdp: UInt64? = nil) -> [UInt8] {
        var page = ByteWriter(count: 4096)
        if let rsdp { page.put(rsdp, at: 0x070) }                 // acpi_rsdp_addr (boot protocol 2.14)
        if let framebuffer { putScreenInfo(framebuffer, into: &page) }
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

    /// struct screen_info at offset 0: a VESA linear framebuffer in graphics mode, which a stock
    /// kernel's sysfb turns into a simple-framebuffer (simpledrm or simplefb) or vesafb console.
    static func putScreenInfo(_ geometry: FramebufferGeometry, into page: inout ByteWriter) {
        page.put(UInt8(0x23), at: 0x0f)                                   // orig_video_isVGA: VIDEO_TYPE_VLFB
        page.put(UInt16(geometry.width), at: 0x12)                        // lfb_width
        page.put(UInt16(geometry.height), at: 0x14)                       // lfb_height
        page.put(UInt16(32), at: 0x16)                                    // lfb_depth
        page.put(UInt32(X86Layout.framebufferAddress.rawValue), at: 0x18) // lfb_base
        page.put(UInt32((geometry.pixelAreaBytes + 0xffff) >> 16), at: 0x1c)  // lfb_size, in 64 KiB units for VLFB
        page.put(UInt16(geometry.stride), at: 0x24)                       // lfb_linelength
        for (offset, value) in [(0x26, 8), (0x27, 16), (0x28, 8), (0x29, 8), (0x2a, 8), (0x2b, 0), (0x2c, 8), (0x2d, 24)] {
            page.put(UInt8(value), at: offset)                            // red, green, blue, reserved: size then position
        }
    }
}

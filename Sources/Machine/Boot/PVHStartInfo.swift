import Devices
import GuestMemory

/// Builds the PVH `hvm_start_info` (version 1), its memory map and module list.
///
/// PVH has no field for a framebuffer, so a display is announced as one more module whose
/// command line describes it (`engram-framebuffer width=W height=H stride=S format=xrgb8888`),
/// with the pixels' address and size; Linux takes only module 0 (the initrd) and ignores it.
enum PVHStartInfo {
    static let magic: UInt32 = 0x336e_c578

    /// The framebuffer module's command line.
    static func framebufferCommandLine(_ geometry: FramebufferGeometry) -> String {
        "engram-framebuffer width=\(geometry.width) height=\(geometry.height) stride=\(geometry.stride) format=xrgb8888"
    }

    /// The start_info bytes for `pvhStartInfoAddress`, the memmap for `pvhMemoryMapAddress`, the
    /// modules for `pvhModuleListAddress`, and their command lines for `pvhModuleCommandLineAddress`.
    static func build(
        memoryMap: [E820Entry], initrd: (address: UInt64, size: UInt64)?, framebuffer: FramebufferGeometry? = nil, rsdp: UInt64? = nil
    ) -> (info: [UInt8], memoryMap: [UInt8], modules: [UInt8], moduleCommandLines: [UInt8]) {
        let moduleCount = (initrd == nil ? 0 : 1) + (framebuffer == nil ? 0 : 1)
        var info = ByteWriter(count: 56)
        info.put(magic, at: 0)
        info.put(UInt32(1), at: 4)                                   // version
        info.put(UInt32(moduleCount), at: 12)                        // nr_modules
        info.put(X86Layout.pvhModuleListAddress.rawValue, at: 16)    // modlist_paddr
        info.put(X86Layout.commandLineAddress.rawValue, at: 24)      // cmdline_paddr
        info.put(rsdp ?? 0, at: 32)                                  // rsdp_paddr
        info.put(X86Layout.pvhMemoryMapAddress.rawValue, at: 40)     // memmap_paddr
        info.put(UInt32(memoryMap.count), at: 48)                    // memmap_entries

        var map = ByteWriter(count: 24 * memoryMap.count)
        for (index, entry) in memoryMap.enumerated() {
            map.put(entry.address, at: index * 24)
            map.put(entry.sizeInBytes, at: index * 24 + 8)
            map.put(entry.kind.rawValue, at: index * 24 + 16)
        }
        var modules = ByteWriter(count: 64)
        var commandLines: [UInt8] = []
        if let initrd {
            modules.put(initrd.address, at: 0)
            modules.put(initrd.size, at: 8)
        }
        if let framebuffer {
            let entry = initrd == nil ? 0 : 32
            modules.put(X86Layout.framebufferAddress.rawValue, at: entry)
            modules.put(UInt64(framebuffer.pixelAreaBytes), at: entry + 8)
            modules.put(X86Layout.pvhModuleCommandLineAddress.rawValue, at: entry + 16)
            commandLines = Array(framebufferCommandLine(framebuffer).utf8) + [0]
        }
        return (info.bytes, map.bytes, modules.bytes, commandLines)
    }
}

import CLinux
import KVM

/// The boot GDT both entry paths use: selectors 0x10 code, 0x18 data, 0x20 TSS (Linux's __BOOT_CS/__BOOT_DS).
enum BootGDT {
    static let codeSelector: UInt16 = 0x10
    static let dataSelector: UInt16 = 0x18
    static let taskSelector: UInt16 = 0x20

    /// (flags, base, limit) per entry; flags = access byte | granularity nibble << 12.
    static func descriptors(longMode: Bool) -> [(flags: UInt16, base: UInt32, limit: UInt32)] {
        [(0, 0, 0), (0, 0, 0),
         (longMode ? 0xa09b : 0xc09b, 0, 0xfffff),   // code: 64-bit (L) or 32-bit (D/B), 4 KiB granular
         (0xc093, 0, 0xfffff),                       // data: read/write, flat
         (0x008b, 0, 0x67)]                          // 32/64-bit busy TSS, as the entry protocols ask
    }

    /// The table's bytes as the CPU reads them.
    static func bytes(longMode: Bool) -> [UInt8] {
        var writer = ByteWriter(count: 8 * descriptors(longMode: longMode).count)
        for (index, entry) in descriptors(longMode: longMode).enumerated() {
            let base = UInt64(entry.base), limit = UInt64(entry.limit), flags = UInt64(entry.flags)
            let value = ((base & 0xff00_0000) << 32) | ((base & 0x00ff_ffff) << 16) | (limit & 0xffff)
                | ((limit & 0xf_0000) << 32) | ((flags & 0xf0ff) << 40)
            writer.put(value, at: index * 8)
        }
        return writer.bytes
    }

    /// The hidden segment state KVM needs for entry `index`, matching what the CPU would load from it.
    static func segment(index: Int, longMode: Bool) -> VCPUSegment {
        let entry = descriptors(longMode: longMode)[index]
        let granular = entry.flags & 0x8000 != 0
        var segment = VCPUSegment()
        segment.base = UInt64(entry.base)
        segment.limit = granular ? (entry.limit << 12) | 0xfff : entry.limit
        segment.selector = UInt16(index * 8)
        segment.type = UInt8(entry.flags & 0xf)
        segment.present = UInt8((entry.flags >> 7) & 1)
        segment.dpl = UInt8((entry.flags >> 5) & 3)
        segment.db = UInt8((entry.flags >> 14) & 1)
        segment.s = UInt8((entry.flags >> 4) & 1)
        segment.l = UInt8((entry.flags >> 13) & 1)
        segment.g = granular ? 1 : 0
        segment.unusable = segment.present == 0 ? 1 : 0
        return segment
    }
}

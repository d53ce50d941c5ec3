/// Where a flat RAM file's bytes sit in guest-physical memory: the file holds RAM only, and the
/// machine put its PCI hole below 4 GiB, so the top of a large file lands above 4 GiB.
package enum RawLayout: String, CaseIterable, Sendable {
    /// QEMU's `pc` (i440fx) machine: all low below 3.5 GiB, else 3 GiB low and the rest from 4 GiB.
    case pc
    /// QEMU's `q35` machine: all low below 2.75 GiB, else 2 GiB low and the rest from 4 GiB.
    case q35
    /// Engram's machine: up to 3 GiB low, the rest from 4 GiB.
    case engram
    /// The file is guest-physical memory from address 0, holes included.
    case flat

    private static let fourGiB: UInt64 = 1 << 32

    /// The placements of a RAM file of `size` bytes.
    package func ranges(forSize size: UInt64) -> [ImageRange] {
        let low: UInt64
        switch self {
        case .pc: low = size >= 0xE000_0000 ? 0xC000_0000 : size
        case .q35: low = size >= 0xB000_0000 ? 0x8000_0000 : size
        case .engram: low = min(size, 0xC000_0000)
        case .flat: low = size
        }
        var ranges = [ImageRange(guestAddress: 0, sizeInBytes: low, regionOffset: 0)]
        if size > low { ranges.append(ImageRange(guestAddress: Self.fourGiB, sizeInBytes: size - low, regionOffset: low)) }
        return ranges.filter { $0.sizeInBytes > 0 }
    }
}

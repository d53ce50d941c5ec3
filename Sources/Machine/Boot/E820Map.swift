import GuestMemory

/// One entry of the BIOS-style memory map given to the guest (e820 for Linux, the PVH memmap).
struct E820Entry: Equatable {
    enum Kind: UInt32 { case ram = 1, reserved = 2 }
    var address: UInt64
    var sizeInBytes: UInt64
    var kind: Kind
}

/// Builds the guest's memory map from where RAM is mapped.
enum E820Map {
    /// RAM below 640 KiB less the EBDA (MP table), RAM from 1 MiB, and any RAM above 4 GiB.
    static func entries(for ram: [GuestMapping]) -> [E820Entry] {
        var entries: [E820Entry] = []
        for mapping in ram {
            let start = mapping.guestAddress.rawValue, end = mapping.endAddress.rawValue
            if start < X86Layout.lowMemoryEnd {
                entries.append(E820Entry(address: start, sizeInBytes: X86Layout.mpTableAddress.rawValue - start, kind: .ram))
                entries.append(E820Entry(address: X86Layout.mpTableAddress.rawValue,
                                         sizeInBytes: X86Layout.lowMemoryEnd - X86Layout.mpTableAddress.rawValue, kind: .reserved))
                let highStart = X86Layout.kernelLoadAddress.rawValue
                if end > highStart { entries.append(E820Entry(address: highStart, sizeInBytes: end - highStart, kind: .ram)) }
            } else {
                entries.append(E820Entry(address: start, sizeInBytes: end - start, kind: .ram))
            }
        }
        return entries
    }
}

import GuestMemory

/// Loads an ELF kernel's segments at their physical addresses and finds its PVH entry note.
///
/// The same entry QEMU uses for `-kernel` on ELF files (XEN_ELFNOTE_PHYS32_ENTRY).
enum ELFKernelLoader {
    static let pvhEntryNoteType: UInt32 = 18

    /// Loads a PVH kernel: its entry comes from the Xen PVH note.
    static func load(_ bytes: [UInt8], path: String, into memory: GuestMemoryMap) throws(MachineError) -> KernelEntry {
        let loaded = try loadSegments(bytes, path: path, into: memory)
        guard let entry = loaded.pvhEntry else {
            throw .kernelFormat(path: path, reason: "ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); Engram enters ELF kernels through PVH")
        }
        return .pvh(address: entry)
    }

    /// Loads every PT_LOAD segment at its physical address; returns e_entry and the PVH entry if noted.
    static func loadSegments(_ bytes: [UInt8], path: String, into memory: GuestMemoryMap) throws(MachineError) -> (entryPoint: UInt64, pvhEntry: UInt32?) {
        let reader = ByteReader(bytes: bytes)
        func fail(_ reason: String) -> MachineError { .kernelFormat(path: path, reason: reason) }
        guard bytes.count >= 52 else { throw fail("ELF header truncated") }
        let is64 = bytes[4] == 2
        guard bytes[4] == 1 || is64 else { throw fail("unknown ELF class \(bytes[4])") }
        guard bytes[5] == 1 else { throw fail("not a little-endian ELF") }
        let machine = reader.get(UInt16.self, at: 18) ?? 0
        guard machine == 62 || machine == 3 else { throw fail("ELF machine \(machine) is not x86") }

        let phOffset = Int(is64 ? (reader.get(UInt64.self, at: 32) ?? 0) : UInt64(reader.get(UInt32.self, at: 28) ?? 0))
        let phEntrySize = Int(reader.get(UInt16.self, at: is64 ? 54 : 42) ?? 0)
        let phCount = Int(reader.get(UInt16.self, at: is64 ? 56 : 44) ?? 0)
        guard phEntrySize >= (is64 ? 56 : 32), phCount > 0,
              phOffset >= 0, phOffset <= bytes.count, phCount * phEntrySize <= bytes.count - phOffset else {
            throw fail("program headers out of the file")
        }

        var entry: UInt32?
        for index in 0..<phCount {
            let base = phOffset + index * phEntrySize
            let type = reader.get(UInt32.self, at: base) ?? 0
            let offset, physical, fileSize, memorySize: UInt64
            if is64 {
                offset = reader.get(UInt64.self, at: base + 8) ?? 0
                physical = reader.get(UInt64.self, at: base + 24) ?? 0
                fileSize = reader.get(UInt64.self, at: base + 32) ?? 0
                memorySize = reader.get(UInt64.self, at: base + 40) ?? 0
            } else {
                offset = UInt64(reader.get(UInt32.self, at: base + 4) ?? 0)
                physical = UInt64(reader.get(UInt32.self, at: base + 12) ?? 0)
                fileSize = UInt64(reader.get(UInt32.self, at: base + 16) ?? 0)
                memorySize = UInt64(reader.get(UInt32.self, at: base + 20) ?? 0)
            }
            guard offset <= UInt64(bytes.count), fileSize <= UInt64(bytes.count) - offset, fileSize <= memorySize else {
                throw fail("segment \(index) lies outside the file")
            }
            let data = bytes[Int(offset)..<Int(offset + fileSize)]
            switch type {
            case 1:  // PT_LOAD: file bytes, then zeros up to the memory size (the backing may hold old data).
                do {
                    try memory.write(Array(data), at: GuestAddress(physical))
                    if memorySize > fileSize {
                        try memory.write([UInt8](repeating: 0, count: Int(memorySize - fileSize)), at: GuestAddress(physical + fileSize))
                    }
                } catch {
                    throw .doesNotFit(what: "kernel segment \(index) at 0x\(String(physical, radix: 16))", sizeInBytes: memorySize,
                                      reason: "outside guest RAM")
                }
            case 4:  // PT_NOTE
                if let found = pvhEntry(in: Array(data)) { entry = found }
            default: break
            }
        }
        let entryPoint = is64 ? (reader.get(UInt64.self, at: 24) ?? 0) : UInt64(reader.get(UInt32.self, at: 24) ?? 0)
        return (entryPoint, entry)
    }

    /// Walks a note segment for the Xen PVH entry note.
    static func pvhEntry(in notes: [UInt8]) -> UInt32? {
        let reader = ByteReader(bytes: notes)
        var offset = 0
        while let nameSize = reader.get(UInt32.self, at: offset),
              let descriptionSize = reader.get(UInt32.self, at: offset + 4),
              let type = reader.get(UInt32.self, at: offset + 8) {
            let nameStart = offset + 12
            let descriptionStart = nameStart + Int((nameSize + 3) & ~3)
            guard nameSize < 4096, descriptionSize < 4096, descriptionStart + Int(descriptionSize) <= notes.count else { return nil }
            let name = notes[nameStart..<(nameStart + Int(nameSize))].prefix { $0 != 0 }
            if type == pvhEntryNoteType, Array(name) == Array("Xen".utf8), descriptionSize >= 4 {
                return reader.get(UInt32.self, at: descriptionStart)
            }
            offset = descriptionStart + Int((descriptionSize + 3) & ~3)
        }
        return nil
    }
}

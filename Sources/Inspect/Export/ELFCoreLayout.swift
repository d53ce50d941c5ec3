import LinuxSystem
/// One PT_LOAD of an exported core: a contiguous guest-physical range and where its bytes sit.
package struct ELFCoreLoad: Sendable, Equatable {
    package var guestAddress: UInt64
    package var sizeInBytes: UInt64
    package var fileOffset: UInt64

    package init(guestAddress: UInt64, sizeInBytes: UInt64, fileOffset: UInt64) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.fileOffset = fileOffset
    }
}

/// Where the file of an ELF core puts everything: headers, notes, then one page-aligned load per
/// contiguous guest-physical range, each made of runs of regions. Page alignment lets the file
/// system keep zero pages as holes and lets readers map loads directly.
struct ELFCoreLayout {
    /// A run of one region inside a load.
    struct Piece {
        var region: Int
        var regionOffset: UInt64
        var guestAddress: UInt64
        var sizeInBytes: UInt64
    }

    private(set) var loads: [ELFCoreLoad] = []
    /// The pieces of each load, in guest-physical order.
    private(set) var pieces: [[Piece]] = []
    let programHeaderCount: Int
    let notesOffset: Int
    let fileSize: UInt64

    /// Plans the core of `image` with `noteBytes` of notes. Ranges are taken in guest-physical
    /// order; where two overlap the earlier one keeps the overlap, as no byte can be in two loads.
    init(image: MemoryImage, noteBytes: Int) throws(InspectError) {
        let placements = image.regions.indices
            .flatMap { region in image.regions[region].ranges.map { (region: region, range: $0) } }
            .filter { $0.range.sizeInBytes > 0 }
            .sorted { ($0.range.guestAddress, $0.region) < ($1.range.guestAddress, $1.region) }
        guard !placements.isEmpty else {
            throw .missing(what: "guest-physical memory", reason: "no region of \(image.source) is placed in guest-physical memory")
        }
        var groups: [(start: UInt64, end: UInt64, pieces: [Piece])] = []
        for placement in placements {
            var piece = Piece(region: placement.region, regionOffset: placement.range.regionOffset,
                              guestAddress: placement.range.guestAddress, sizeInBytes: placement.range.sizeInBytes)
            if let last = groups.last, piece.guestAddress < last.end {
                let overlap = min(piece.sizeInBytes, last.end - piece.guestAddress)
                piece.guestAddress += overlap
                piece.regionOffset += overlap
                piece.sizeInBytes -= overlap
                guard piece.sizeInBytes > 0 else { continue }
            }
            if let last = groups.last, last.end == piece.guestAddress {
                groups[groups.count - 1].end += piece.sizeInBytes
                groups[groups.count - 1].pieces.append(piece)
            } else {
                groups.append((piece.guestAddress, piece.guestAddress + piece.sizeInBytes, [piece]))
            }
        }
        // One PT_NOTE plus the loads; PN_XNUM (0xffff) and above would need a section header.
        guard groups.count + 1 < Int(ELFFormat.extendedCount) else {
            throw .badArgument("\(image.source) has \(groups.count) separate guest-physical ranges; an ELF core without extended numbering holds at most \(Int(ELFFormat.extendedCount) - 2)")
        }
        programHeaderCount = groups.count + 1
        notesOffset = ELFFormat.headerSize + ELFFormat.programHeaderSize * programHeaderCount
        let page = PageSize.bytes64
        var cursor = (UInt64(notesOffset + noteBytes) + page - 1) / page * page
        var end = cursor
        for group in groups {
            let size = group.end - group.start
            loads.append(ELFCoreLoad(guestAddress: group.start, sizeInBytes: size, fileOffset: cursor))
            pieces.append(group.pieces)
            end = cursor + size
            cursor = (end + page - 1) / page * page
        }
        fileSize = end
    }

    /// The ELF header and program headers (PT_NOTE first, then the loads, as QEMU writes them).
    func headers(machine: UInt16, noteBytes: Int) -> [UInt8] {
        var builder = ELFByteBuilder(count: notesOffset)
        builder.put(ELFFormat.magic, at: 0)
        builder.put([ELFFormat.class64, ELFFormat.littleEndian, ELFFormat.currentVersion], at: 4)
        builder.put(ELFFormat.typeCore, at: ELFFormat.Header.type)
        builder.put(machine, at: ELFFormat.Header.machine)
        builder.put(UInt32(ELFFormat.currentVersion), at: ELFFormat.Header.version)
        builder.put(UInt64(ELFFormat.headerSize), at: ELFFormat.Header.phoff)
        builder.put(UInt16(ELFFormat.headerSize), at: ELFFormat.Header.ehsize)
        builder.put(UInt16(ELFFormat.programHeaderSize), at: ELFFormat.Header.phentsize)
        builder.put(UInt16(programHeaderCount), at: ELFFormat.Header.phnum)

        var header = ELFFormat.headerSize
        builder.put(ELFFormat.segmentNote, at: header + ELFFormat.ProgramHeader.type)
        builder.put(UInt64(notesOffset), at: header + ELFFormat.ProgramHeader.offset)
        builder.put(UInt64(noteBytes), at: header + ELFFormat.ProgramHeader.filesz)
        builder.put(UInt64(noteBytes), at: header + ELFFormat.ProgramHeader.memsz)
        for load in loads {
            header += ELFFormat.programHeaderSize
            builder.put(ELFFormat.segmentLoad, at: header + ELFFormat.ProgramHeader.type)
            builder.put(load.fileOffset, at: header + ELFFormat.ProgramHeader.offset)
            // QEMU without paging writes p_vaddr = p_paddr (its virtual address is 0, and 0
            // becomes the physical address); readers that ignore p_paddr then still see RAM.
            builder.put(load.guestAddress, at: header + ELFFormat.ProgramHeader.vaddr)
            builder.put(load.guestAddress, at: header + ELFFormat.ProgramHeader.paddr)
            builder.put(load.sizeInBytes, at: header + ELFFormat.ProgramHeader.filesz)
            builder.put(load.sizeInBytes, at: header + ELFFormat.ProgramHeader.memsz)
        }
        return builder.bytes
    }
}

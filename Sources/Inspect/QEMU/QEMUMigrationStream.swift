import GuestMemory
extension MemoryImage {
    /// A QEMU migration stream saved to a file (`migrate "exec:cat > FILE"`, QEMU 7.2's legacy
    /// format): one region per RAMBlock, named by its idstr, whose pages point into the stream
    /// (nothing is copied). The main RAM block is placed by the machine type's PCI-hole layout;
    /// ROM, BIOS, VGA and ACPI blocks have no known guest-physical address, so they get no ranges.
    ///
    /// Parsing stops at the end of the `ram` section: the device state after it has no length
    /// fields and is not needed for memory. Streams whose RAM is not all in the stream or not
    /// plainly encoded (x-ignore-shared, postcopy, XBZRLE, compression, multifd, mapped-ram,
    /// block migration) are refused with the offset and what was found.
    package static func qemuMigrationStream(path: String) throws(InspectError) -> MemoryImage {
        let file = try ImageFile(path: path)
        var reader = MigrationStreamReader(file: file)
        try MigrationStreamConfiguration.readHeader(&reader)
        var configuration: MigrationStreamConfiguration?
        // The bytes the stream holds, holes left out: a sparse file's size describes no pages.
        var ram = MigrationRAMSection(dataBytes: file.dataRanges(in: 0..<file.sizeInBytes).reduce(0) { $0 + ($1.upperBound - $1.lowerBound) })
        var ramSectionID: UInt32?
        sections: while true {
            let sectionOffset = reader.offset
            let typeByte = try reader.byte("a section type")
            guard let type = MigrationStreamFormat.SectionType(rawValue: typeByte) else {
                throw .damaged(path: path, reason: "it has section type 0x\(String(typeByte, radix: 16)) at offset \(sectionOffset), which is no QEMU section type")
            }
            switch type {
            case .configuration where configuration == nil && ramSectionID == nil:
                configuration = try MigrationStreamConfiguration.read(&reader)
            case .command:
                try skipCommand(&reader, at: sectionOffset)
            case .start:
                let id = try reader.bigEndian32("a section id")
                let name = try reader.shortString("a section name")
                _ = try reader.bigEndian32("a section instance id")
                let version = try reader.bigEndian32("a section version")
                guard name == "ram" else {
                    throw .unknownFormat(path: path, reason: "it has iterable section \"\(name)\" at offset \(sectionOffset) (block migration, dirty bitmaps or VFIO), whose payload Engram does not read")
                }
                guard ramSectionID == nil else {
                    throw .damaged(path: path, reason: "it starts a second ram section at offset \(sectionOffset)")
                }
                guard version == MigrationStreamFormat.ramSectionVersion else {
                    throw .unknownFormat(path: path, reason: "its ram section at offset \(sectionOffset) is version \(version); only version 4 is read")
                }
                ramSectionID = id
                try ram.readPayload(&reader)
                try skipFooter(&reader, id: id)
            case .part, .end:
                let id = try reader.bigEndian32("a section id")
                guard let ramSectionID, id == ramSectionID else {
                    throw .damaged(path: path, reason: "its \(type == .part ? "PART" : "END") section at offset \(sectionOffset) is for section \(id), which no START section before it opened as ram")
                }
                try ram.readPayload(&reader)
                try skipFooter(&reader, id: id)
                if type == .end { break sections }
            case .endOfFile where ramSectionID == nil:
                throw .unknownFormat(path: path, reason: "it ends (EOF record at offset \(sectionOffset)) without a ram section")
            default:
                throw .damaged(path: path, reason: "it has an unexpected \(type) record at offset \(sectionOffset), before its ram section ended")
            }
        }
        let machine = configuration?.machineType
        let layout: RawLayout = (machine?.contains("q35") ?? false) ? .q35 : .pc
        let regions = regions(of: ram.blocks, layout: layout)
        let kind = "QEMU migration stream (machine \(machine ?? "not recorded"), \(layout.rawValue) layout)"
        return MemoryImage(kind: kind, source: path, files: [file], regions: regions)
    }

    /// A QEMU_VM_COMMAND record: only the return-path, ping and switchover-start commands a plain
    /// precopy sends are skipped. POSTCOPY_ADVISE is refused: with postcopy-ram the block list may carry page-size
    /// fields that cannot be told apart from the next block's name.
    private static func skipCommand(_ reader: inout MigrationStreamReader, at offset: UInt64) throws(InspectError) {
        let command = try reader.bigEndian16("a command number")
        let length = try reader.bigEndian16("a command length")
        switch command {
        case MigrationStreamFormat.Command.openReturnPath, MigrationStreamFormat.Command.ping, MigrationStreamFormat.Command.switchoverStart:
            try reader.skip(UInt64(length), "a command's data")
        case MigrationStreamFormat.Command.postcopyAdvise:
            throw .unknownFormat(path: reader.path, reason: "it advises postcopy (command at offset \(offset)); streams saved with postcopy-ram or dirty-bitmaps are not read")
        default:
            throw .unknownFormat(path: reader.path, reason: "it has migration command \(command) at offset \(offset), which a plain precopy stream does not send")
        }
    }

    /// The optional footer after a START/PART/END payload (machine types since 2.4 send it); it
    /// must repeat the section id.
    private static func skipFooter(_ reader: inout MigrationStreamReader, id: UInt32) throws(InspectError) {
        guard try reader.peekByte() == MigrationStreamFormat.SectionType.footer.rawValue else { return }
        let offset = reader.offset
        _ = try reader.byte("a section footer")
        let footerID = try reader.bigEndian32("a section footer's id")
        guard footerID == id else {
            throw .damaged(path: reader.path, reason: "its section footer at offset \(offset) is for section \(footerID), not \(id)")
        }
    }

    /// One region per block. The main RAM block — `pc.ram`, else the largest block (the block of
    /// `-machine memory-backend=ID` is named ID) — gets the layout's placements; the others get none.
    private static func regions(of blocks: [MigrationRAMBlock], layout: RawLayout) -> [ImageRegion] {
        let main = blocks.firstIndex { $0.name == "pc.ram" }
            ?? blocks.indices.max { blocks[$0].sizeInBytes < blocks[$1].sizeInBytes || (blocks[$0].sizeInBytes == blocks[$1].sizeInBytes && $0 > $1) }
        return blocks.enumerated().map { index, block in
            var builder = PageSpanBuilder()
            for (page, offset) in block.pageOffsets.enumerated() where offset != 0 {
                let page = PageIndex(UInt64(page))
                builder.append(page..<page + 1, file: 0, fileOffset: offset)
            }
            let pageCount = UInt64(block.pageOffsets.count)
            return ImageRegion(name: block.name, sizeInBytes: block.sizeInBytes,
                               ranges: index == main ? layout.ranges(forSize: block.sizeInBytes) : [],
                               spans: builder.finished(pageCount: pageCount))
        }
    }
}

import LinuxSystem
/// One RAMBlock named in the stream's MEM_SIZE list, with where each of its pages was last sent.
struct MigrationRAMBlock {
    var name: String
    var sizeInBytes: UInt64
    /// Per page: the file offset of the page's latest data, or 0 for a zero page (a ZERO
    /// record, or never sent). Offset 0 holds the magic, so it is never page data.
    var pageOffsets: [UInt64]
}

/// Reads the payloads of the `ram` section (START, PART…, END; version 4) of a legacy (not
/// mapped-ram) stream. Pages are not copied: a PAGE record's data stays in the stream, and the
/// latest record for a page replaces earlier ones (a live migration resends dirtied pages).
struct MigrationRAMSection {
    private(set) var blocks: [MigrationRAMBlock] = []
    private var haveBlockList = false
    private var blockIndex: [String: Int] = [:]
    /// The block of the previous page record, for CONTINUE records.
    private var currentBlock: Int?
    /// Most pages the block list may declare in total; see `pageBudget(forFileSize:)`.
    private let pageBudget: UInt64
    /// The stream's bytes of data (its holes left out).
    private let dataBytes: UInt64

    init(dataBytes: UInt64) {
        self.dataBytes = dataBytes
        pageBudget = Self.pageBudget(forFileSize: dataBytes)
    }

    /// `size` is the stream's data (its holes left out: a record takes bytes that are there).
    /// Every page costs at least a 9-byte ZERO record, except pages QEMU never sends (free-page
    /// hints, unplugged virtio-mem): allow those up to 1 Mi pages (4 GiB of guest RAM, an 8 MiB
    /// table). A block list claiming more is damage, refused before any table is allocated.
    static func pageBudget(forFileSize size: UInt64) -> UInt64 { size / 9 + (1 << 20) }

    /// Reads records up to and including the payload's EOS.
    mutating func readPayload(_ reader: inout MigrationStreamReader) throws(InspectError) {
        typealias Flag = MigrationStreamFormat.RAMFlag
        while true {
            let recordOffset = reader.offset
            let word = try reader.bigEndian64("a RAM record header")
            let flags = word & MigrationStreamFormat.flagMask
            let address = word & ~MigrationStreamFormat.flagMask
            switch flags & ~Flag.continue {
            case Flag.endOfSection where flags == Flag.endOfSection:
                return
            case Flag.memorySize where flags == Flag.memorySize:
                try readBlockList(&reader, totalBytes: address, recordOffset: recordOffset)
            case Flag.zero:
                let block = try blockOfRecord(&reader, flags: flags, recordOffset: recordOffset)
                let page = try pageOfRecord(address, block: block, reader: reader, recordOffset: recordOffset)
                let fill = try reader.byte("a ZERO record's fill byte")
                guard fill == 0 else {
                    throw .unknownFormat(path: reader.path, reason: "its ZERO record at offset \(recordOffset) fills a page with byte 0x\(String(fill, radix: 16)), which QEMU no longer writes and Engram does not read")
                }
                blocks[block].pageOffsets[page] = 0
            case Flag.page:
                let block = try blockOfRecord(&reader, flags: flags, recordOffset: recordOffset)
                let page = try pageOfRecord(address, block: block, reader: reader, recordOffset: recordOffset)
                let dataOffset = reader.offset
                try reader.skip(PageSize.bytes64, "the data of the PAGE record at offset \(recordOffset)")
                blocks[block].pageOffsets[page] = dataOffset
            case Flag.xbzrle:
                throw refusal(reader, recordOffset, flags, "XBZRLE (delta-encoded pages); save with the xbzrle capability off")
            case Flag.compressedPage:
                throw refusal(reader, recordOffset, flags, "COMPRESS_PAGE (zlib pages); save with the compress capability off")
            case Flag.hook:
                throw refusal(reader, recordOffset, flags, "HOOK (RDMA transport records)")
            case Flag.multifdFlush:
                throw refusal(reader, recordOffset, flags, "MULTIFD_FLUSH (a multifd stream, whose pages travel on other channels)")
            default:
                throw .damaged(path: reader.path, reason: "its RAM record at offset \(recordOffset) has flags 0x\(String(flags, radix: 16)), which are no valid record type")
            }
        }
    }

    private func refusal(_ reader: MigrationStreamReader, _ offset: UInt64, _ flags: UInt64, _ what: String) -> InspectError {
        .unknownFormat(path: reader.path, reason: "its RAM record at offset \(offset) has flags 0x\(String(flags, radix: 16)): \(what), which Engram does not decode")
    }

    /// The MEM_SIZE record's list: idstr and used_length per block until the lengths add up to
    /// `totalBytes`. The optional page-size (postcopy-ram) and GPA (x-ignore-shared) fields cannot
    /// be present: streams with those capabilities are refused before the `ram` section.
    private mutating func readBlockList(_ reader: inout MigrationStreamReader, totalBytes: UInt64, recordOffset: UInt64) throws(InspectError) {
        guard !haveBlockList else {
            throw .damaged(path: reader.path, reason: "it has a second RAM block list (MEM_SIZE record) at offset \(recordOffset)")
        }
        haveBlockList = true
        var remaining = totalBytes
        var pages: UInt64 = 0
        while remaining > 0 {
            let entryOffset = reader.offset
            let name = try reader.shortString("a RAM block name")
            let size = try reader.bigEndian64("a RAM block length")
            guard size <= remaining else {
                throw .damaged(path: reader.path, reason: "its RAM block \(name) at offset \(entryOffset) is \(size) bytes, more than the \(remaining) left of the \(totalBytes) the MEM_SIZE record at offset \(recordOffset) announced")
            }
            guard blockIndex[name] == nil else {
                throw .damaged(path: reader.path, reason: "its RAM block list names block \(name) twice (again at offset \(entryOffset))")
            }
            let blockPages = (size + PageSize.bytes64 - 1) / PageSize.bytes64
            pages += blockPages
            guard pages <= pageBudget else {
                throw .damaged(path: reader.path, reason: "its RAM block list (MEM_SIZE record at offset \(recordOffset)) declares more pages than a stream of \(dataBytes) bytes of data can describe (\(pages) pages by block \(name))")
            }
            remaining -= size
            blockIndex[name] = blocks.count
            blocks.append(MigrationRAMBlock(name: name, sizeInBytes: size, pageOffsets: []))
        }
        // Tables only after the whole list passed its checks.
        for index in blocks.indices {
            let count = (blocks[index].sizeInBytes + PageSize.bytes64 - 1) / PageSize.bytes64
            blocks[index].pageOffsets = [UInt64](repeating: 0, count: Int(count))
        }
    }

    /// The block a ZERO or PAGE record is for: named after the header, or the previous record's
    /// block when CONTINUE is set.
    private mutating func blockOfRecord(_ reader: inout MigrationStreamReader, flags: UInt64, recordOffset: UInt64) throws(InspectError) -> Int {
        if flags & MigrationStreamFormat.RAMFlag.continue != 0 {
            guard let currentBlock else {
                throw .damaged(path: reader.path, reason: "its RAM record at offset \(recordOffset) continues a block, but no record before it named one")
            }
            return currentBlock
        }
        let name = try reader.shortString("a RAM record's block name")
        guard let index = blockIndex[name] else {
            let known = blocks.isEmpty ? "no block list came before it" : "the block list has \(blocks.map(\.name).joined(separator: ", "))"
            throw .damaged(path: reader.path, reason: "its RAM record at offset \(recordOffset) names block \"\(name)\"; \(known)")
        }
        currentBlock = index
        return index
    }

    /// The page index of a record's address, which must lie inside the block.
    private func pageOfRecord(_ address: UInt64, block: Int, reader: MigrationStreamReader, recordOffset: UInt64) throws(InspectError) -> Int {
        guard address < blocks[block].sizeInBytes else {
            throw .damaged(path: reader.path, reason: "its RAM record at offset \(recordOffset) is for offset 0x\(String(address, radix: 16)) of block \(blocks[block].name), which is only 0x\(String(blocks[block].sizeInBytes, radix: 16)) bytes")
        }
        return Int(address / PageSize.bytes64)
    }
}

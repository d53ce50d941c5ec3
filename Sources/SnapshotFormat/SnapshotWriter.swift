import Glibc
import GuestMemory
import LinuxSystem

/// Writes guest memory and a state blob to one snapshot file (docs/FORMAT.md), atomically.
///
/// The file appears at its path only when complete (`AtomicFile`): everything goes to a
/// temporary file first, the header last, then fsync, rename and an fsync of the directory.
/// Any failure removes the temporary file. Pages go from the region mapping to the file with pwrite in
/// runs of up to 8 MiB; all-zero pages are never written, so the file stays sparse.
/// The VM must be paused: page CRCs are computed from the same bytes that are written.
/// The same layout and crash-safe sequence write a merged chain (`SnapshotMerger`); only
/// where the pages come from differs (`SnapshotPageOrigin`).
package enum SnapshotWriter {
    /// Writes every region of `memory` and `contents` to `path` as a full snapshot.
    @discardableResult
    package static func writeFull(
        memory: GuestMemoryMap, contents: SnapshotContents, to path: String, options: WriteOptions = WriteOptions()
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(.memory(memory, dirtyPages: nil), contents: contents, to: path, parent: nil, options: options)
    }

    /// Writes only the pages set in `dirtyPages` (by region name; a region not named has no
    /// dirty pages) as a diff snapshot whose other pages come from `parent`.
    @discardableResult
    package static func writeDiff(
        memory: GuestMemoryMap, dirtyPages: [String: PageBitmap], parent: ParentSnapshot, contents: SnapshotContents, to path: String,
        options: WriteOptions = WriteOptions()
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(.memory(memory, dirtyPages: dirtyPages), contents: contents, to: path, parent: parent, options: options)
    }

    /// Writes the composed pages and top state of `chain` to `path` as one full snapshot.
    @discardableResult
    static func writeFull(
        composing chain: SnapshotChain, to path: String, options: WriteOptions
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        let top = chain.files[0]
        let contents = SnapshotContents(configuration: top.configuration, state: top.stateSections)
        return try write(.chain(chain), contents: contents, to: path, parent: nil, options: options)
    }

    private static func write(
        _ origin: SnapshotPageOrigin, contents: SnapshotContents, to path: String, parent: ParentSnapshot?, options: WriteOptions
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        let configuration = contents.configuration.encoded()
        let state = contents.state.encoded()
        var header = try plan(origin, configurationLength: configuration.count, state: state, path: path, parent: parent)
        if let chosen = options.snapshotID { header.snapshotID = chosen }
        header.configurationCRC = CRC32C.checksum(configuration)
        let fileSize = header.stateOffset + header.stateLength
        try SnapshotDirectory.checkReplaceable(path, options: options)

        let file: AtomicFile
        do { file = try AtomicFile(path: path, protecting: options.protectedFiles) } catch { throw SnapshotFormatError(error) }
        let rawFD = file.file.rawValue
        let temporaryPath = file.temporaryFilePath
        var summary = SnapshotWriteSummary()
        summary.fileSizeInBytes = fileSize
        guard ftruncate(rawFD, off_t(fileSize)) == 0 else {
            throw .systemCall(path: temporaryPath, name: "ftruncate", errno: errno)
        }
        let pages = RegionPageWriter(fd: rawFD, path: temporaryPath)
        for (index, entry) in header.regions.enumerated() {
            let pageCount = entry.sizeInBytes / PageSize.bytes64
            var bitmap = PageBitmap(pageCount: pageCount)
            var crcTable = LittleEndianBuffer(count: Int(pageCount) * 4)
            switch origin {
            case .memory(let memory, let dirtyPages):
                try pages.write(
                    memory.regions[index], at: entry.pagesOffset,
                    dirty: dirtyPages.map { $0[entry.name] ?? PageBitmap(pageCount: pageCount) },
                    bitmap: &bitmap, crcTable: &crcTable, summary: &summary)
            case .chain(let chain):
                try pages.write(
                    composing: chain, region: index, at: entry.pagesOffset, bitmap: &bitmap, crcTable: &crcTable, summary: &summary)
            }
            let bitmapBytes = bitmap.littleEndianBytes()
            header.regions[index].bitmapCRC = CRC32C.checksum(bitmapBytes)
            header.regions[index].crcTableCRC = CRC32C.checksum(crcTable.bytes)
            try FileIO.writeAll(rawFD, bitmapBytes, at: entry.bitmapOffset, path: temporaryPath)
            try FileIO.writeAll(rawFD, crcTable.bytes, at: entry.crcTableOffset, path: temporaryPath)
            summary.bytesWritten += entry.bitmapLength + entry.crcTableLength
        }
        try FileIO.writeAll(rawFD, configuration, at: header.configurationOffset, path: temporaryPath)
        try FileIO.writeAll(rawFD, state, at: header.stateOffset, path: temporaryPath)
        header.creationTime = UInt64(clamping: WallClock.nanosecondsSinceEpoch())
        let headerBytes = header.encode()
        try FileIO.writeAll(rawFD, headerBytes, at: 0, path: temporaryPath)
        summary.bytesWritten += UInt64(configuration.count + state.count + headerBytes.count)
        summary.identity = SnapshotIdentity(id: header.snapshotID, headerCRC: LittleEndianBuffer(bytes: headerBytes).u32(at: headerBytes.count - 4))
        let replacingExisting = options.replacingExisting
        do { try file.commit(.durable, replacingExisting: replacingExisting) } catch {
            if !replacingExisting && error.errno == .fileExists {
                throw .unwritable(path: path, reason: "a file already exists there; refusing to replace it")
            }
            throw SnapshotFormatError(error)
        }
        return summary
    }

    /// Checks the input fits the format and lays out every area; state offset and length are final.
    private static func plan(
        _ origin: SnapshotPageOrigin, configurationLength: Int, state: [UInt8], path: String, parent: ParentSnapshot?
    ) throws(SnapshotFormatError) -> FileHeader {
        let regions = origin.regions
        let dirtyPages = origin.dirtyPages ?? [:]
        guard !regions.isEmpty, regions.count <= Int(SnapshotLayout.maximumRegionCount) else {
            throw .unwritable(path: path, reason: "\(regions.count) regions; the format holds 1 to \(SnapshotLayout.maximumRegionCount)")
        }
        guard UInt64(state.count) <= SnapshotLayout.maximumStateLength else {
            throw .unwritable(path: path, reason: "state is \(state.count) bytes; at most \(SnapshotLayout.maximumStateLength) allowed")
        }
        guard UInt64(configurationLength) <= SnapshotLayout.maximumConfigurationLength else {
            throw .unwritable(path: path, reason: "configuration is \(configurationLength) bytes; at most \(SnapshotLayout.maximumConfigurationLength) allowed")
        }
        if let parent, !FileHeader.isValidParentName(parent.fileName) {
            throw .unwritable(path: path, reason: "parent file name \"\(parent.fileName)\" must be 1 to 255 bytes with no / or NUL, not . or ..")
        }
        let names = regions.map(\.name)
        guard Set(names).count == names.count else { throw .unwritable(path: path, reason: "region names repeat: \(names)") }
        for name in dirtyPages.keys where !names.contains(name) {
            throw .unwritable(path: path, reason: "dirty pages given for unknown region \(name)")
        }

        let headerSize = UInt64(SnapshotLayout.headerSize(regionCount: regions.count))
        var cursor = headerSize
        var entries: [RegionEntry] = []
        for region in regions {
            let nameBytes = Array(region.name.utf8)
            guard !nameBytes.isEmpty, nameBytes.count <= SnapshotLayout.regionNameLength, !nameBytes.contains(0) else {
                throw .unwritable(path: path, reason: "region name \"\(region.name)\" must be 1 to 64 bytes with no NUL")
            }
            guard region.sizeInBytes > 0, region.sizeInBytes % PageSize.bytes64 == 0, region.sizeInBytes <= SnapshotLayout.maximumRegionSize else {
                throw .unwritable(path: path, reason: "region \(region.name) is \(region.sizeInBytes) bytes; expected a multiple of 4096 up to 1 TiB")
            }
            let pageCount = region.sizeInBytes / PageSize.bytes64
            if let dirty = dirtyPages[region.name], dirty.pageCount != pageCount {
                throw .unwritable(path: path, reason: "dirty bitmap of region \(region.name) covers \(dirty.pageCount) pages; the region has \(pageCount)")
            }
            let placements = region.placements
            guard placements.count <= SnapshotLayout.maximumPlacements else {
                throw .unwritable(path: path, reason: "region \(region.name) is placed \(placements.count) times; at most 4 allowed")
            }
            let bitmapLength = PageBitmap.byteCount(pageCount: pageCount)
            let bitmapOffset = cursor
            cursor = roundUp(cursor + bitmapLength, SnapshotLayout.smallAlignment)
            let crcTableOffset = cursor
            cursor = roundUp(cursor + pageCount * 4, SnapshotLayout.smallAlignment)
            entries.append(RegionEntry(
                name: region.name, sizeInBytes: region.sizeInBytes, pageSize: UInt32(PageSize.bytes64), placements: placements,
                bitmapOffset: bitmapOffset, bitmapLength: bitmapLength, crcTableOffset: crcTableOffset,
                crcTableLength: pageCount * 4, pagesOffset: 0))
        }
        do { try SnapshotReader.checkPlacements(entries, path: path) } catch {
            throw .unwritable(path: path, reason: "\(error)")
        }
        let configurationOffset = cursor
        cursor = roundUp(cursor + UInt64(configurationLength), SnapshotLayout.smallAlignment)
        cursor = roundUp(cursor, SnapshotLayout.pagesAlignment)
        var pagesEnd = cursor
        for i in entries.indices {
            entries[i].pagesOffset = cursor
            pagesEnd = cursor + entries[i].sizeInBytes
            cursor = roundUp(pagesEnd, SnapshotLayout.pagesAlignment)
        }
        var header = FileHeader(
            kind: parent == nil ? .full : .diff, parentFileName: parent?.fileName ?? "",
            stateOffset: roundUp(pagesEnd, SnapshotLayout.smallAlignment), stateLength: UInt64(state.count),
            stateCRC: state.isEmpty ? 0 : CRC32C.checksum(state), creationTime: 0, regions: entries)
        header.snapshotID = .random()
        header.parent = parent?.identity
        header.configurationOffset = configurationOffset
        header.configurationLength = UInt64(configurationLength)
        return header
    }

    /// CRC32C of a page of zeros: the CRC a diff records for a changed page that is now zero.
    package static let zeroPageCRC: UInt32 = CRC32C.checksum([UInt8](repeating: 0, count: PageSize.bytes))

    private static func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 { (value + alignment - 1) & ~(alignment - 1) }
}

import Glibc
import GuestMemory

/// Writes guest memory and a state blob to one snapshot file (docs/FORMAT.md), atomically.
///
/// The file appears at its path only when complete: everything goes to `PATH.tmp-<random>`
/// first, the header last, then fsync, rename and an fsync of the directory. Any failure
/// removes the temporary file. Pages go from the region mapping to the file with pwrite in
/// runs of up to 8 MiB; all-zero pages are never written, so the file stays sparse.
/// The VM must be paused: page CRCs are computed from the same bytes that are written.
package enum SnapshotWriter {
    /// Writes every region of `memory` and `state` to `path` as a full snapshot.
    @discardableResult
    package static func writeFull(
        memory: GuestMemoryMap, state: [UInt8], to path: String
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(memory: memory, state: state, to: path, kind: .full, parentFileName: "", dirtyPages: [:])
    }

    /// Writes only the pages set in `dirtyPages` (by region name; a region not named has no
    /// dirty pages) as a diff snapshot whose other pages come from `parentFileName`.
    @discardableResult
    package static func writeDiff(
        memory: GuestMemoryMap, dirtyPages: [String: PageBitmap], parentFileName: String, state: [UInt8], to path: String
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(memory: memory, state: state, to: path, kind: .diff, parentFileName: parentFileName, dirtyPages: dirtyPages)
    }

    private static func write(
        memory: GuestMemoryMap, state: [UInt8], to path: String, kind: SnapshotKind, parentFileName: String,
        dirtyPages: [String: PageBitmap]
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        var header = try plan(memory: memory, state: state, path: path, kind: kind, parentFileName: parentFileName, dirtyPages: dirtyPages)
        let fileSize = header.stateOffset + header.stateLength

        let temporaryPath = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        // SAFETY: the path string is bridged to a C string only for the call.
        let rawFD = unsafe open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard rawFD >= 0 else { throw .systemCall(path: temporaryPath, name: "open", errno: errno) }
        let descriptor = OwnedFileDescriptor(taking: rawFD)
        // Keeps the descriptor open until every write, fsync and rename below is done.
        defer { withExtendedLifetime(descriptor) {} }
        var renamed = false
        do throws(SnapshotFormatError) {
            var summary = SnapshotWriteSummary()
            summary.fileSizeInBytes = fileSize
            guard ftruncate(rawFD, off_t(fileSize)) == 0 else {
                throw .systemCall(path: temporaryPath, name: "ftruncate", errno: errno)
            }
            for (index, region) in memory.regions.enumerated() {
                let entry = header.regions[index]
                let pageCount = region.sizeInBytes / SnapshotLayout.pageSize
                var bitmap = PageBitmap(pageCount: pageCount)
                var crcTable = LittleEndianBuffer(count: Int(pageCount) * 4)
                try writePages(
                    of: region, fd: rawFD, pagesOffset: entry.pagesOffset, kind: kind,
                    dirty: kind == .full ? nil : dirtyPages[region.name] ?? PageBitmap(pageCount: pageCount),
                    bitmap: &bitmap, crcTable: &crcTable, summary: &summary, path: temporaryPath)
                try FileIO.writeAll(rawFD, bitmap.littleEndianBytes(), at: entry.bitmapOffset, path: temporaryPath)
                try FileIO.writeAll(rawFD, crcTable.bytes, at: entry.crcTableOffset, path: temporaryPath)
                summary.bytesWritten += entry.bitmapLength + entry.crcTableLength
            }
            try FileIO.writeAll(rawFD, state, at: header.stateOffset, path: temporaryPath)
            header.creationTime = currentTime()
            let headerBytes = header.encode()
            try FileIO.writeAll(rawFD, headerBytes, at: 0, path: temporaryPath)
            summary.bytesWritten += UInt64(state.count + headerBytes.count)
            guard fsync(rawFD) == 0 else { throw .systemCall(path: temporaryPath, name: "fsync", errno: errno) }
            // SAFETY: both path strings are bridged to C strings only for the call.
            guard unsafe rename(temporaryPath, path) == 0 else { throw .systemCall(path: path, name: "rename", errno: errno) }
            renamed = true
            try syncDirectory(of: path)
            return summary
        } catch {
            // SAFETY: the path string is bridged to a C string only for the call.
            if !renamed { unsafe unlink(temporaryPath) }
            throw error
        }
    }

    /// Checks the input fits the format and lays out every area; state offset and length are final.
    private static func plan(
        memory: GuestMemoryMap, state: [UInt8], path: String, kind: SnapshotKind, parentFileName: String,
        dirtyPages: [String: PageBitmap]
    ) throws(SnapshotFormatError) -> FileHeader {
        let regions = memory.regions
        guard !regions.isEmpty, regions.count <= Int(SnapshotLayout.maximumRegionCount) else {
            throw .unwritable(path: path, reason: "\(regions.count) regions; the format holds 1 to \(SnapshotLayout.maximumRegionCount)")
        }
        guard UInt64(state.count) <= SnapshotLayout.maximumStateLength else {
            throw .unwritable(path: path, reason: "state is \(state.count) bytes; at most \(SnapshotLayout.maximumStateLength) allowed")
        }
        if kind == .diff {
            let bytes = Array(parentFileName.utf8)
            guard !bytes.isEmpty, bytes.count <= SnapshotLayout.parentNameLength, !bytes.contains(0), !bytes.contains(UInt8(ascii: "/")) else {
                throw .unwritable(path: path, reason: "parent file name \"\(parentFileName)\" must be 1 to 256 bytes with no / or NUL")
            }
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
            guard region.sizeInBytes % SnapshotLayout.pageSize == 0, region.sizeInBytes <= SnapshotLayout.maximumRegionSize else {
                throw .unwritable(path: path, reason: "region \(region.name) is \(region.sizeInBytes) bytes; expected a multiple of 4096 up to 1 TiB")
            }
            let pageCount = region.sizeInBytes / SnapshotLayout.pageSize
            if let dirty = dirtyPages[region.name], dirty.pageCount != pageCount {
                throw .unwritable(path: path, reason: "dirty bitmap of region \(region.name) covers \(dirty.pageCount) pages; the region has \(pageCount)")
            }
            let placements = memory.mappings.filter { $0.region === region }.map {
                SnapshotPlacement(guestAddress: $0.guestAddress, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset)
            }
            guard placements.count <= SnapshotLayout.maximumPlacements else {
                throw .unwritable(path: path, reason: "region \(region.name) is placed \(placements.count) times; at most 4 allowed")
            }
            let bitmapLength = PageBitmap.byteCount(pageCount: pageCount)
            let bitmapOffset = cursor
            cursor = roundUp(cursor + bitmapLength, SnapshotLayout.smallAlignment)
            let crcTableOffset = cursor
            cursor = roundUp(cursor + pageCount * 4, SnapshotLayout.smallAlignment)
            entries.append(RegionEntry(
                name: region.name, sizeInBytes: region.sizeInBytes, pageSize: UInt32(SnapshotLayout.pageSize), placements: placements,
                bitmapOffset: bitmapOffset, bitmapLength: bitmapLength, crcTableOffset: crcTableOffset,
                crcTableLength: pageCount * 4, pagesOffset: 0))
        }
        cursor = roundUp(cursor, SnapshotLayout.pagesAlignment)
        var pagesEnd = cursor
        for i in entries.indices {
            entries[i].pagesOffset = cursor
            pagesEnd = cursor + entries[i].sizeInBytes
            cursor = roundUp(pagesEnd, SnapshotLayout.pagesAlignment)
        }
        return FileHeader(
            kind: kind, parentFileName: kind == .diff ? parentFileName : "",
            stateOffset: roundUp(pagesEnd, SnapshotLayout.smallAlignment), stateLength: UInt64(state.count),
            stateCRC: state.isEmpty ? 0 : CRC32C.checksum(state), creationTime: 0, regions: entries)
    }

    /// Scans one region page by page and writes runs of stored pages straight from its mapping.
    private static func writePages(
        of region: GuestRegion, fd: CInt, pagesOffset: UInt64, kind: SnapshotKind, dirty: PageBitmap?,
        bitmap: inout PageBitmap, crcTable: inout LittleEndianBuffer, summary: inout SnapshotWriteSummary, path: String
    ) throws(SnapshotFormatError) {
        let pageSize = SnapshotLayout.pageSize
        let pageCount = region.sizeInBytes / pageSize
        let maximumRunPages = UInt64(SnapshotLayout.maximumIOLength) / pageSize
        let dataRanges = dataPageRanges(of: region)
        let zeroPageCRC = SnapshotWriter.zeroPageCRC
        do {
            // SAFETY: `memory` is the region's whole mapping; it is used only inside the closure.
            try unsafe region.withUnsafeBytes(at: RegionOffset(0), count: Int(region.sizeInBytes)) { memory in
                var runStart: UInt64 = 0
                var runLength: UInt64 = 0
                var rangeIndex = 0
                func flush() throws(SnapshotFormatError) {
                    guard runLength > 0 else { return }
                    let start = Int(runStart * pageSize)
                    let count = Int(runLength * pageSize)
                    // SAFETY: the run lies inside the region's mapping, whose view `memory` covers all of it.
                    try unsafe FileIO.writeAll(
                        fd, UnsafeRawBufferPointer(rebasing: memory[start..<start + count]), at: pagesOffset + runStart * pageSize, path: path)
                    summary.bytesWritten += UInt64(count)
                    runLength = 0
                }
                for page in 0..<pageCount {
                    let index = PageIndex(page)
                    if let dirty, !dirty.contains(index) {
                        try flush()
                        summary.pagesSkipped += 1
                        continue
                    }
                    while rangeIndex < dataRanges.count, dataRanges[rangeIndex].upperBound <= page { rangeIndex += 1 }
                    let hasData = rangeIndex < dataRanges.count && dataRanges[rangeIndex].contains(page)
                    let start = Int(page * pageSize)
                    // SAFETY: the page lies inside `memory`; the view does not escape this iteration.
                    let bytes = unsafe UnsafeRawBufferPointer(rebasing: memory[start..<start + Int(pageSize)])
                    if unsafe !hasData || ZeroPageScan.isZeroPage(bytes) {
                        try flush()
                        summary.pagesZero += 1
                        if kind == .diff {
                            bitmap.insert(index)
                            crcTable.setU32(zeroPageCRC, at: Int(page) * 4)
                        }
                        continue
                    }
                    bitmap.insert(index)
                    crcTable.setU32(unsafe CRC32C.checksum(bytes), at: Int(page) * 4)
                    if runLength == 0 { runStart = page }
                    runLength += 1
                    summary.pagesWritten += 1
                    if runLength == maximumRunPages { try flush() }
                }
                try flush()
            }
        } catch let error as SnapshotFormatError {
            throw error
        } catch let error as GuestMemoryError {
            throw .memory(path: path, error)
        } catch {
            throw .unwritable(path: path, reason: "\(error)")
        }
    }

    /// CRC32C of a page of zeros: the CRC a diff records for a changed page that is now zero.
    package static let zeroPageCRC: UInt32 = CRC32C.checksum([UInt8](repeating: 0, count: Int(SnapshotLayout.pageSize)))

    /// Page ranges of the region's backing that may hold data (SEEK_DATA/SEEK_HOLE); pages
    /// outside them are holes, zero without being touched. The whole region if unknown.
    private static func dataPageRanges(of region: GuestRegion) -> [Range<UInt64>] {
        let pageSize = SnapshotLayout.pageSize
        let pageCount = region.sizeInBytes / pageSize
        guard let fd = region.fileDescriptor else { return [0..<pageCount] }
        var ranges: [Range<UInt64>] = []
        var offset: off_t = 0
        let size = off_t(region.sizeInBytes)
        while offset < size {
            let dataStart = lseek(fd, offset, seekData)
            if dataStart < 0 {
                if errno == ENXIO { break }
                return [0..<pageCount]
            }
            var holeStart = lseek(fd, dataStart, seekHole)
            if holeStart < 0 { return [0..<pageCount] }
            holeStart = min(holeStart, size)
            let first = UInt64(dataStart) / pageSize
            let end = min((UInt64(holeStart) + pageSize - 1) / pageSize, pageCount)
            if first < end { ranges.append(first..<end) }
            offset = holeStart
        }
        return ranges
    }

    /// lseek(2) whences SEEK_DATA and SEEK_HOLE (Linux values; hidden behind _GNU_SOURCE in Glibc).
    private static let seekData: CInt = 3
    private static let seekHole: CInt = 4

    /// fsync(2) of the directory holding `path`, so the rename itself is durable.
    private static func syncDirectory(of path: String) throws(SnapshotFormatError) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        // SAFETY: the path string is bridged to a C string only for the call.
        let fd = unsafe open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall(path: directory, name: "open (directory)", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .systemCall(path: directory, name: "fsync (directory)", errno: errno) }
    }

    /// Nanoseconds since the Unix epoch.
    private static func currentTime() -> UInt64 {
        var now = timespec()
        // SAFETY: `now` is a local the call fills.
        unsafe clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private static func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 { (value + alignment - 1) & ~(alignment - 1) }
}

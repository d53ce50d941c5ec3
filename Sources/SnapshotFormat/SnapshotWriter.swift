import Glibc
import GuestMemory

/// Writes guest memory and a state blob to one snapshot file (docs/FORMAT.md), atomically.
///
/// The file appears at its path only when complete: everything goes to `PATH.tmp-<random>`
/// first, the header last, then fsync, rename and an fsync of the directory. Any failure
/// removes the temporary file. Pages go from the region mapping to the file with pwrite in
/// runs of up to 8 MiB; all-zero pages are never written, so the file stays sparse.
/// The VM must be paused: page CRCs are computed from the same bytes that are written.
/// The same layout and crash-safe sequence write a merged chain (`SnapshotMerger`); only
/// where the pages come from differs (`SnapshotPageOrigin`).
package enum SnapshotWriter {
    /// Writes every region of `memory` and `state` to `path` as a full snapshot.
    @discardableResult
    package static func writeFull(
        memory: GuestMemoryMap, state: [UInt8], to path: String
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(.memory(memory, dirtyPages: nil), state: state, to: path, kind: .full, parentFileName: "")
    }

    /// Writes only the pages set in `dirtyPages` (by region name; a region not named has no
    /// dirty pages) as a diff snapshot whose other pages come from `parentFileName`.
    @discardableResult
    package static func writeDiff(
        memory: GuestMemoryMap, dirtyPages: [String: PageBitmap], parentFileName: String, state: [UInt8], to path: String
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(.memory(memory, dirtyPages: dirtyPages), state: state, to: path, kind: .diff, parentFileName: parentFileName)
    }

    /// Writes the composed pages and top state of `chain` to `path` as one full snapshot; with
    /// `replacingExisting` false an existing file at `path` is an error and is left untouched.
    @discardableResult
    static func writeFull(
        composing chain: SnapshotChain, to path: String, replacingExisting: Bool
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try write(.chain(chain), state: chain.state, to: path, kind: .full, parentFileName: "", replacingExisting: replacingExisting)
    }

    private static func write(
        _ origin: SnapshotPageOrigin, state: [UInt8], to path: String, kind: SnapshotKind, parentFileName: String,
        replacingExisting: Bool = true
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        var header = try plan(origin, state: state, path: path, kind: kind, parentFileName: parentFileName)
        let fileSize = header.stateOffset + header.stateLength

        let temporaryPath = path + ".tmp-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        // SAFETY: the path string is bridged to a C string only for the call.
        let rawFD = unsafe open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard rawFD >= 0 else { throw .systemCall(path: temporaryPath, name: "open", errno: errno) }
        let descriptor = OwnedFileDescriptor(taking: rawFD)
        // Keeps the descriptor open until every write, fsync and rename below is done.
        defer { withExtendedLifetime(descriptor) {} }
        var published = false
        do throws(SnapshotFormatError) {
            var summary = SnapshotWriteSummary()
            summary.fileSizeInBytes = fileSize
            guard ftruncate(rawFD, off_t(fileSize)) == 0 else {
                throw .systemCall(path: temporaryPath, name: "ftruncate", errno: errno)
            }
            let pages = RegionPageWriter(fd: rawFD, path: temporaryPath)
            for (index, entry) in header.regions.enumerated() {
                let pageCount = entry.sizeInBytes / SnapshotLayout.pageSize
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
            try publish(temporaryPath, as: path, replacingExisting: replacingExisting)
            published = true
            try syncDirectory(of: path)
            return summary
        } catch {
            // SAFETY: the path string is bridged to a C string only for the call.
            if !published { unsafe unlink(temporaryPath) }
            throw error
        }
    }

    /// Gives the finished temporary file its final name: rename(2), which replaces a file
    /// there; or, when nothing may be replaced, link(2), which fails if the name exists,
    /// then unlink of the temporary name.
    private static func publish(_ temporaryPath: String, as path: String, replacingExisting: Bool) throws(SnapshotFormatError) {
        if replacingExisting {
            // SAFETY: both path strings are bridged to C strings only for the call.
            guard unsafe rename(temporaryPath, path) == 0 else { throw .systemCall(path: path, name: "rename", errno: errno) }
            return
        }
        // SAFETY: both path strings are bridged to C strings only for the call.
        guard unsafe link(temporaryPath, path) == 0 else {
            if errno == EEXIST { throw .unwritable(path: path, reason: "a file already exists there; refusing to replace it") }
            throw .systemCall(path: path, name: "link", errno: errno)
        }
        // The snapshot is in place; a leftover temporary name would only be an extra link to it.
        // SAFETY: the path string is bridged to a C string only for the call.
        _ = unsafe unlink(temporaryPath)
    }

    /// Checks the input fits the format and lays out every area; state offset and length are final.
    private static func plan(
        _ origin: SnapshotPageOrigin, state: [UInt8], path: String, kind: SnapshotKind, parentFileName: String
    ) throws(SnapshotFormatError) -> FileHeader {
        let regions = origin.regions
        let dirtyPages = origin.dirtyPages ?? [:]
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

    /// CRC32C of a page of zeros: the CRC a diff records for a changed page that is now zero.
    package static let zeroPageCRC: UInt32 = CRC32C.checksum([UInt8](repeating: 0, count: Int(SnapshotLayout.pageSize)))

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

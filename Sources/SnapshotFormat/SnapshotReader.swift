import Glibc
import GuestMemory
import LinuxSystem

/// Opens a snapshot file and checks every field, offset and length before anything is used.
///
/// After `init` succeeds every area the header names lies inside the file, aligned and
/// disjoint, and the state section's CRC matched; pages are checked against their CRC
/// when read. Messages name the file and the field that is wrong.
package final class SnapshotReader: Sendable {
    package let path: String
    package let fileSizeInBytes: UInt64
    package let header: FileHeader
    package let regions: [SnapshotRegion]
    /// The configuration sections (version 2; empty for a version 1 file).
    package let configuration: StateSections
    /// The state sections: per device, the vCPUs, irqchip, timer and clock. A version 1 file's
    /// JSON state is the one section `machine-json` (`StateSections.legacyMachineJSON`).
    package let stateSections: StateSections
    private let descriptor: OwnedFileDescriptor

    /// Opens and validates `path` (docs/FORMAT.md "Validation a reader performs"). Without
    /// `checkingCRCTables` the CRC tables' own checksums wait for `checkCRCTables()`: a mapped
    /// restore never reads the base's page CRCs, and a restore checks them beside its other
    /// set-up rather than before it.
    package init(path: String, checkingCRCTables: Bool = true) throws(SnapshotFormatError) {
        let descriptor: OwnedFileDescriptor
        do { descriptor = try OwnedFileDescriptor.open(path, .readOnly) } catch {
            throw .systemCall(path: path, name: "open", errno: error.errno.rawValue)
        }
        let rawFD = descriptor.rawValue
        guard let status = FileStatus(descriptor: rawFD) else { throw .systemCall(path: path, name: "fstat", errno: errno) }
        guard status.kind == .regular else {
            throw .invalidField(path: path, field: "file type", reason: "is not a regular file")
        }
        let fileSize = status.sizeInBytes
        let header = try FileHeader.read(rawFD, fileSize: fileSize, path: path)
        let version = header.version
        let headerSize = header.headerSize

        let bounds = BoundsCheck(path: path, fileSize: fileSize)
        var areas: [(start: UInt64, end: UInt64, name: String)] = [(0, UInt64(headerSize), "header")]
        var regions: [SnapshotRegion] = []
        var names = Set<String>()
        for (index, entry) in header.regions.enumerated() {
            guard names.insert(entry.name).inserted else {
                throw .invalidField(path: path, field: "region name \(entry.name)", reason: "appears twice; expected unique names")
            }
            let region = try Self.validate(entry, index: index, version: version, bounds: bounds, areas: &areas, descriptor: rawFD)
            regions.append(region)
        }

        guard header.stateLength <= SnapshotLayout.maximumStateLength else {
            throw .stateTooLarge(path: path, length: header.stateLength, cap: SnapshotLayout.maximumStateLength)
        }
        try bounds.aligned(header.stateOffset, to: SnapshotLayout.smallAlignment, area: "state section")
        let stateEnd = try bounds.inside(offset: header.stateOffset, length: header.stateLength, area: "state section")
        if header.stateLength > 0 { areas.append((header.stateOffset, stateEnd, "state section")) }
        if version >= 2 {
            guard header.configurationLength <= SnapshotLayout.maximumConfigurationLength else {
                throw .invalidField(path: path, field: "configuration length",
                                    reason: "is \(header.configurationLength); at most \(SnapshotLayout.maximumConfigurationLength) allowed")
            }
            try bounds.aligned(header.configurationOffset, to: SnapshotLayout.smallAlignment, area: "configuration section")
            let end = try bounds.inside(offset: header.configurationOffset, length: header.configurationLength, area: "configuration section")
            areas.append((header.configurationOffset, end, "configuration section"))
        }
        try Self.checkDisjoint(areas, path: path)
        try Self.checkPlacements(header.regions, path: path)
        guard fileSize == stateEnd else {
            throw .invalidField(path: path, field: "file size", reason: "is \(fileSize) bytes; the layout ends at \(stateEnd) (state offset + length)")
        }
        let state = try FileIO.read(rawFD, count: Int(header.stateLength), at: header.stateOffset, path: path)
        let stateCRC = state.isEmpty ? 0 : CRC32C.checksum(state)
        guard stateCRC == header.stateCRC else { throw .stateChecksum(path: path, stored: header.stateCRC, computed: stateCRC) }
        if version >= 2 {
            let bytes = try FileIO.read(rawFD, count: Int(header.configurationLength), at: header.configurationOffset, path: path)
            let crc = CRC32C.checksum(bytes)
            guard crc == header.configurationCRC else {
                throw .configurationChecksum(path: path, stored: header.configurationCRC, computed: crc)
            }
            do throws(SectionError) {
                configuration = try StateSections(decoding: bytes, what: "snapshot \(path) configuration")
                stateSections = try StateSections(decoding: state, what: "snapshot \(path) state")
            } catch {
                throw .sections(error)
            }
            let names = Set(configuration.sections.map(\.name))
            if let twice = stateSections.sections.first(where: { names.contains($0.name) }) {
                throw .sections(.malformed("snapshot \(path)", "has section \(twice.name) in both its configuration and its state"))
            }
        } else {
            configuration = StateSections()
            stateSections = StateSections([StateSection(name: StateSections.legacyMachineJSON, version: 2, payload: state)])
        }

        self.path = path
        self.fileSizeInBytes = fileSize
        self.header = header
        self.regions = regions
        self.descriptor = descriptor
        if checkingCRCTables { try checkCRCTables() }
    }

    /// Checks each CRC table against the checksum its region entry records (version 2): with the
    /// groups of 64 entries whose pages the file does not store counted as the zeros writers put
    /// there (a pass over the groups holding stored pages, not the whole table); `asStored`, over
    /// every byte, as `snapshot verify` and `--verify` check it.
    package func checkCRCTables(asStored: Bool = false) throws(SnapshotFormatError) {
        guard header.version >= 2 else { return }
        for (region, entry) in zip(regions, header.regions) {
            let computed = asStored ? region.pageCRCs.checksum() : region.pageCRCs.checksum(stored: region.bitmap)
            guard computed == entry.crcTableCRC else {
                throw .tableChecksum(path: path, table: "region \(region.name) CRC table", stored: entry.crcTableCRC, computed: computed)
            }
        }
    }

    /// The machine state as one container (configuration sections, then state sections): what a
    /// restore decodes, and what a page server or object store carries for this snapshot.
    package var state: [UInt8] { configuration.merged(with: stateSections).encoded() }

    /// Checks one region entry against the file and loads its bitmap and CRC table.
    private static func validate(
        _ entry: RegionEntry, index: Int, version: UInt32, bounds: BoundsCheck,
        areas: inout [(start: UInt64, end: UInt64, name: String)], descriptor: CInt
    ) throws(SnapshotFormatError) -> SnapshotRegion {
        let path = bounds.path
        let name = "region \(entry.name)"
        let pageSize = PageSize.bytes64
        guard UInt64(entry.pageSize) == pageSize else {
            throw .invalidField(path: path, field: "\(name) page size", reason: "is \(entry.pageSize); expected \(pageSize)")
        }
        guard entry.sizeInBytes > 0, entry.sizeInBytes % pageSize == 0, entry.sizeInBytes <= SnapshotLayout.maximumRegionSize else {
            throw .invalidField(path: path, field: "\(name) size", reason: "is \(entry.sizeInBytes); expected a non-zero multiple of 4096 up to 1 TiB")
        }
        let pageCount = entry.sizeInBytes / pageSize
        for (i, placement) in entry.placements.enumerated() {
            let field = "\(name) placement \(i)"
            guard placement.sizeInBytes > 0 else { throw .invalidField(path: path, field: field, reason: "has size 0") }
            _ = try bounds.sum(placement.guestAddress.rawValue, placement.sizeInBytes, area: field)
            let end = try bounds.sum(placement.regionOffset.rawValue, placement.sizeInBytes, area: field)
            guard end <= entry.sizeInBytes else {
                throw .invalidField(path: path, field: field, reason: "ends at region offset \(end), past the region's \(entry.sizeInBytes) bytes")
            }
        }
        let bitmapLength = PageBitmap.byteCount(pageCount: pageCount)
        guard entry.bitmapLength == bitmapLength else {
            throw .invalidField(path: path, field: "\(name) bitmap length", reason: "is \(entry.bitmapLength); expected \(bitmapLength) for \(pageCount) pages")
        }
        guard entry.crcTableLength == pageCount * 4 else {
            throw .invalidField(path: path, field: "\(name) CRC table length", reason: "is \(entry.crcTableLength); expected \(pageCount * 4) for \(pageCount) pages")
        }
        try bounds.aligned(entry.bitmapOffset, to: SnapshotLayout.smallAlignment, area: "\(name) bitmap")
        try bounds.aligned(entry.crcTableOffset, to: SnapshotLayout.smallAlignment, area: "\(name) CRC table")
        try bounds.aligned(entry.pagesOffset, to: SnapshotLayout.pagesAlignment, area: "\(name) pages")
        let bitmapEnd = try bounds.inside(offset: entry.bitmapOffset, length: entry.bitmapLength, area: "\(name) bitmap")
        let crcEnd = try bounds.inside(offset: entry.crcTableOffset, length: entry.crcTableLength, area: "\(name) CRC table")
        let pagesEnd = try bounds.inside(offset: entry.pagesOffset, length: entry.sizeInBytes, area: "\(name) pages")
        areas.append((entry.bitmapOffset, bitmapEnd, "\(name) bitmap"))
        areas.append((entry.crcTableOffset, crcEnd, "\(name) CRC table"))
        areas.append((entry.pagesOffset, pagesEnd, "\(name) pages"))

        let stored = try PageBitmap.readStoredWords(pageCount: pageCount) { (span: inout MutableRawSpan) throws(SnapshotFormatError) in
            try FileIO.readAll(descriptor, into: &span, at: entry.bitmapOffset, path: path)
        }
        if version >= 2 {
            let computed = PageBitmap.storedChecksum(stored)
            guard computed == entry.bitmapCRC else {
                throw .tableChecksum(path: path, table: "\(name) bitmap", stored: entry.bitmapCRC, computed: computed)
            }
        }
        guard let bitmap = PageBitmap(pageCount: pageCount, storedWords: stored) else {
            throw .invalidField(path: path, field: "\(name) bitmap", reason: "has bits set past page \(pageCount - 1)")
        }
        let crcs = try PageCRCTable(descriptor: descriptor, offset: entry.crcTableOffset, count: Int(pageCount), path: path)
        return SnapshotRegion(
            index: index, name: entry.name, sizeInBytes: entry.sizeInBytes, placements: entry.placements, bitmap: bitmap,
            pageCRCs: crcs, pagesOffset: entry.pagesOffset, bitmapOffset: entry.bitmapOffset, crcTableOffset: entry.crcTableOffset)
    }

    private static func checkDisjoint(_ areas: [(start: UInt64, end: UInt64, name: String)], path: String) throws(SnapshotFormatError) {
        let sorted = areas.filter { $0.end > $0.start }.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.end > b.start {
            throw .overlap(path: path, first: a.name, second: b.name)
        }
    }

    /// No two placements overlap in guest-physical memory, and no two of one region share region bytes.
    static func checkPlacements(_ entries: [RegionEntry], path: String) throws(SnapshotFormatError) {
        var guest: [(range: Range<UInt64>, name: String)] = []
        for entry in entries {
            var inRegion: [(range: Range<UInt64>, name: String)] = []
            for (i, placement) in entry.placements.enumerated() {
                let name = "region \(entry.name) placement \(i)"
                let start = placement.guestAddress.rawValue
                guest.append((start..<start + placement.sizeInBytes, name))
                let offset = placement.regionOffset.rawValue
                inRegion.append((offset..<offset + placement.sizeInBytes, name))
            }
            try disjoint(inRegion, what: "region bytes", path: path)
        }
        try disjoint(guest, what: "guest-physical memory", path: path)
    }

    private static func disjoint(_ ranges: [(range: Range<UInt64>, name: String)], what: String, path: String) throws(SnapshotFormatError) {
        let sorted = ranges.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.range.overlaps(b.range) {
            throw .invalidField(path: path, field: b.name, reason: "overlaps \(a.name) in \(what); expected disjoint placements")
        }
    }

    /// The snapshot's kind (full or diff).
    package var kind: SnapshotKind { header.kind }

    /// The parent's file name for a diff; empty for a full snapshot.
    package var parentFileName: String { header.parentFileName }

    /// The region called `name`.
    package func region(named name: String) -> SnapshotRegion? { regions.first { $0.name == name } }

    /// True if `page` of `region` is stored in this file.
    package func isPresent(_ region: SnapshotRegion, page: PageIndex) -> Bool { regions[region.index].isPresent(page) }

    /// File offset of `region`'s page 0, for mapping the page area MAP_PRIVATE (with `fileDescriptor`).
    package func pagesFileOffset(_ region: SnapshotRegion) -> UInt64 { regions[region.index].pagesOffset }

    /// The open snapshot file, read-only; valid while this reader lives.
    package var fileDescriptor: CInt { descriptor.rawValue }

    /// Reads one page into `buffer` (exactly 4096 bytes) and checks its CRC; pages not stored are zero-filled.
    package func readPage(
        _ region: SnapshotRegion, page: PageIndex, into buffer: inout MutableRawSpan
    ) throws(SnapshotFormatError) -> SnapshotPageContent {
        precondition(buffer.byteCount == PageSize.bytes, "readPage needs a 4096-byte buffer")
        let region = regions[region.index]
        guard page.rawValue < region.pageCount else {
            throw .pageOutOfRange(path: path, region: region.name, page: page, pageCount: region.pageCount)
        }
        guard region.isPresent(page) else {
            buffer.zeroBytes()
            return header.kind == .full ? .zero : .inParent
        }
        // The region's page area was checked to lie inside the file, so this offset does too.
        try FileIO.readAll(descriptor.rawValue, into: &buffer, at: region.pagesOffset + page.rawValue * PageSize.bytes64, path: path)
        let computed = CRC32C.checksum(buffer.bytes)
        let stored = region.pageCRCs[Int(page.rawValue)]
        guard computed == stored else {
            throw .pageChecksum(path: path, region: region.name, page: page, stored: stored, computed: computed)
        }
        return .stored
    }

    /// Reads one page into a new array; see `readPage(_:page:into:)`.
    package func readPage(_ region: SnapshotRegion, page: PageIndex) throws(SnapshotFormatError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: PageSize.bytes)
        _ = try bytes.withMutableBytes { (buffer) throws(SnapshotFormatError) in try readPage(region, page: page, into: &buffer) }
        return bytes
    }

    /// In a full snapshot a clear bit means a zero page, which a copy or lazy restore fills
    /// with zeros while a map restore shows the file's bytes there: so every such page must read
    /// as zeros. The writer leaves them as holes; only the file's data extents (SEEK_DATA) are
    /// read, so a sparse file costs a few calls.
    package func verifyClearPagesAreZero() throws(SnapshotFormatError) {
        guard header.kind == .full else { return }
        let fd = descriptor.rawValue
        let pageSize = PageSize.bytes64
        for region in regions {
            let ranges: [Range<UInt64>]
            do { ranges = try DataExtents.ranges(of: fd, from: region.pagesOffset, to: region.pagesOffset + region.sizeInBytes, path: path) } catch {
                if case .failed(let call, _, let errno) = error { throw .systemCall(path: path, name: call, errno: errno.rawValue) }
                throw .unwritable(path: path, reason: error.description)
            }
            for range in ranges {
                let first = (range.lowerBound - region.pagesOffset) / pageSize
                let last = (range.upperBound - region.pagesOffset + pageSize - 1) / pageSize
                // Word by word: the data of a filled snapshot is mostly pages with their bit set.
                try region.bitmap.forEachClear(in: first..<last) { (index) throws(SnapshotFormatError) in
                    let page = index.rawValue
                    let bytes = try FileIO.read(fd, count: PageSize.bytes, at: region.pagesOffset + page * pageSize, path: path)
                    guard bytes.allSatisfy({ $0 == 0 }) else {
                        throw .invalidField(
                            path: path, field: "region \(region.name) page \(page)",
                            reason: "has a clear bit (a zero page) but non-zero bytes in the file; a mapped restore would show them")
                    }
                }
            }
        }
    }

    /// Reads every stored page in runs of up to 8 MiB and checks each page's CRC.
    package func verifyAllPages() throws(SnapshotFormatError) {
        try checkCRCTables(asStored: true)
        let pageSize = PageSize.bytes
        let chunkPages = UInt64(SnapshotLayout.maximumIOLength / pageSize)
        var buffer = [UInt8](repeating: 0, count: SnapshotLayout.maximumIOLength)
        for region in regions {
            try region.bitmap.forEachRun { (run: Range<PageIndex>) throws(SnapshotFormatError) in
                var first = run.lowerBound.rawValue
                while first < run.upperBound.rawValue {
                    let count = min(chunkPages, run.upperBound.rawValue - first)
                    try buffer.withMutableBytes { (all) throws(SnapshotFormatError) in
                        try all.withBytes(in: 0..<Int(count) * pageSize) { (part) throws(SnapshotFormatError) in
                            try FileIO.readAll(descriptor.rawValue, into: &part, at: region.pagesOffset + first * UInt64(pageSize), path: path)
                            let bytes = part.bytes
                            for i in 0..<Int(count) {
                                let page = first + UInt64(i)
                                let computed = CRC32C.checksum(bytes.extracting(i * pageSize..<(i + 1) * pageSize))
                                let stored = region.pageCRCs[Int(page)]
                                guard computed == stored else {
                                    throw SnapshotFormatError.pageChecksum(path: path, region: region.name, page: PageIndex(page), stored: stored, computed: computed)
                                }
                            }
                        }
                    }
                    first += count
                }
            }
        }
    }
}

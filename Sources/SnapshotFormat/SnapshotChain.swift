import LinuxSystem
import Glibc
import GuestMemory

/// A snapshot and the parents its diffs name, composed into one view of guest memory.
///
/// Opening follows `parent_file_name` from the top file through diffs down to a full
/// snapshot, each in the same directory as its child, validating every file and checking
/// that they all describe the same regions. Afterwards each page of each region has one
/// owner: the newest file that stores it, or none (the page is zero). The state section is
/// the top file's.
package final class SnapshotChain: Sendable {
    /// Files from the top (the one opened) down to the full snapshot at the base.
    package let files: [SnapshotReader]
    /// The regions, as the top file describes them.
    package let regions: [SnapshotRegion]
    /// Per region, per page: index into `files` of the page's owner, or `zeroOwner`; empty for a
    /// chain of one file, whose bitmap answers directly.
    private let owners: [[UInt16]]
    /// The top file's bitmaps, answering `owner` for a chain of one file without copying a
    /// `SnapshotRegion` (and retaining its four references) per page.
    private let bitmaps: [PageBitmap]

    /// Marks a page no file stores: it is zero.
    package static let zeroOwner = UInt16.max
    /// The most files a chain may have (a full snapshot and 63 diffs).
    package static let maximumLength = SnapshotLayout.maximumChainFiles

    /// Opens `path` and every parent it names. With `deferringCRCTables` the CRC tables' own
    /// checksums wait for `checkCRCTables(includingBase:)`, so a restore can check them beside
    /// its other set-up instead of before it (1 MiB of table per GiB of guest memory).
    package init(path: String, deferringCRCTables: Bool = false) throws(SnapshotFormatError) {
        var files = [try SnapshotReader(path: path, checkingCRCTables: false)]
        var seen: Set<FileIdentity> = [try Self.identity(of: files[0])]
        while files.last!.kind == .diff {
            let child = files.last!
            guard files.count < Self.maximumLength else {
                throw .chain(path: path, reason: "has more than \(Self.maximumLength) files, more than any Engram writes; merge a shorter part of it (engram snapshot-merge on a file at most \(Self.maximumLength) links deep) or take a full snapshot")
            }
            let parentPath = FileSystem.directory(of: child.path) + "/" + child.parentFileName
            let parent: SnapshotReader
            do { parent = try SnapshotReader(path: parentPath, checkingCRCTables: false) } catch {
                if case .systemCall(_, "open", ENOENT) = error {
                    throw .chain(path: child.path, reason: "names parent \(child.parentFileName), which is not in its directory")
                }
                throw error
            }
            guard seen.insert(try Self.identity(of: parent)).inserted else {
                throw .chain(path: child.path, reason: "its parents loop back to \(parentPath)")
            }
            try Self.checkParentIdentity(parent, of: child)
            try Self.checkSameRegions(parent, as: files[0])
            files.append(parent)
        }
        if !deferringCRCTables { for file in files { try file.checkCRCTables() } }
        // A single full snapshot needs no owner table: its bitmap says it all.
        var owners: [[UInt16]] = []
        if files.count > 1 {
            for region in files[0].regions {
                var owner = [UInt16](repeating: Self.zeroOwner, count: Int(region.pageCount))
                // Oldest first, so newer files overwrite the owner of the pages they store.
                for (index, file) in files.enumerated().reversed() {
                    file.regions[region.index].bitmap.forEachRun { (run: Range<PageIndex>) in
                        for page in run.lowerBound.rawValue..<run.upperBound.rawValue { owner[Int(page)] = UInt16(index) }
                    }
                }
                owners.append(owner)
            }
        }
        self.files = files
        self.regions = files[0].regions
        self.owners = owners
        self.bitmaps = files[0].regions.map(\.bitmap)
    }

    /// The top file's path (the one the chain was opened by).
    package var path: String { files[0].path }

    /// The top file's machine state as one section container (encoded on each call).
    package var state: [UInt8] { files[0].state }

    /// Index into `files` of the file holding `page` of `region`, or `zeroOwner`.
    package func owner(region: Int, page: PageIndex) -> UInt16 {
        guard !owners.isEmpty else { return bitmaps[region].contains(page) ? 0 : Self.zeroOwner }
        return owners[region][Int(page.rawValue)]
    }

    /// How many pages of `region` from `start` on, before `end`, no file stores: a word of the
    /// bitmap at a time for a single file.
    package func zeroPageCount(of region: Int, from start: PageIndex, before end: PageIndex) -> UInt64 {
        guard !owners.isEmpty else { return bitmaps[region].clearCount(from: start, before: end) }
        var page = start
        while page < end, owner(region: region, page: page) == Self.zeroOwner { page += 1 }
        return page.rawValue - start.rawValue
    }

    /// The pages of `region` some file stores (an owner other than `zeroOwner`): the union of the
    /// files' bitmaps, a word at a time, rather than a lookup per page (a page server sends it to
    /// every client that restores).
    package func storedPages(region: Int) -> PageBitmap {
        var stored = files[0].regions[region].bitmap
        for file in files.dropFirst() { stored.formUnion(file.regions[region].bitmap) }
        return stored
    }

    /// The CRC32C recorded for `page` of `region` when it was written (the zero page's for a zero page).
    package func storedCRC(region: Int, page: PageIndex) -> UInt32 {
        let who = owner(region: region, page: page)
        guard who != Self.zeroOwner else { return SnapshotWriter.zeroPageCRC }
        return files[Int(who)].regions[region].pageCRCs[Int(page.rawValue)]
    }

    /// Checks every file's CRC tables against their checksums; without `includingBase`, all but
    /// the base's (a mapped restore reads none of the base's page CRCs).
    package func checkCRCTables(includingBase: Bool = true) throws(SnapshotFormatError) {
        for file in includingBase ? files[...] : files.dropLast() { try file.checkCRCTables() }
    }

    /// The base (full) snapshot.
    package var base: SnapshotReader { files[files.count - 1] }

    /// Fills `buffer` with `buffer.count / 4096` pages of `region` from `firstPage`, each read
    /// from its owner and checked against its CRC; zero pages are zero-filled. Reads runs of
    /// pages with one owner in single calls; allocates nothing.
    package func readPages(of region: Int, from start: PageIndex, into buffer: inout MutableRawSpan) throws(SnapshotFormatError) {
        let firstPage = start.rawValue
        let pageSize = PageSize.bytes
        let count = buffer.byteCount / pageSize
        precondition(buffer.byteCount % pageSize == 0, "readPages needs whole pages")
        let regionName = regions[region].name
        let pageCount = regions[region].pageCount
        guard firstPage <= pageCount, UInt64(count) <= pageCount - firstPage else {
            throw .pageOutOfRange(path: path, region: regionName, page: PageIndex(firstPage + UInt64(count)), pageCount: pageCount)
        }
        var i = 0
        while i < count {
            let who = owner(region: region, page: start + UInt64(i))
            var end = i + 1
            while end < count, owner(region: region, page: start + UInt64(end)) == who { end += 1 }
            try buffer.withBytes(in: i * pageSize..<end * pageSize) { (part) throws(SnapshotFormatError) in
                if who == Self.zeroOwner {
                    part.zeroBytes()
                    return
                }
                let file = files[Int(who)]
                let stored = file.regions[region]
                let first = firstPage + UInt64(i)
                // The reader checked the page area lies inside the file.
                try FileIO.readAll(file.fileDescriptor, into: &part, at: stored.pagesOffset + first * UInt64(pageSize), path: file.path)
                let bytes = part.bytes
                for page in 0..<(end - i) {
                    let computed = CRC32C.checksum(bytes.extracting(page * pageSize..<(page + 1) * pageSize))
                    let expected = stored.pageCRCs[Int(first) + page]
                    guard computed == expected else {
                        throw .pageChecksum(path: file.path, region: regionName, page: PageIndex(first + UInt64(page)),
                                            stored: expected, computed: computed)
                    }
                }
            }
            i = end
        }
    }

    /// `readPages` into the first `count` pages of `buffer`.
    package func readPages(of region: Int, from start: PageIndex, count: Int, into buffer: PageBuffer) throws(SnapshotFormatError) {
        try buffer.withMutablePages(count) { (pages) throws(SnapshotFormatError) in try readPages(of: region, from: start, into: &pages) }
    }

    /// Reads and checks every stored page of every file in the chain, and that the base's zero
    /// pages read as zeros.
    package func verifyAllPages() throws(SnapshotFormatError) {
        for file in files { try file.verifyAllPages() }
        try base.verifyClearPagesAreZero()
    }

    /// Every file must describe the same regions (names, sizes, placements, order) as the top.
    private static func checkSameRegions(_ parent: SnapshotReader, as top: SnapshotReader) throws(SnapshotFormatError) {
        let describe = { (file: SnapshotReader) in file.regions.map { "\($0.name):\($0.sizeInBytes):\($0.placements)" } }
        guard describe(parent) == describe(top) else {
            throw .chain(path: top.path, reason: "parent \(parent.path) has different regions (names, sizes or placements)")
        }
    }

    /// A version 2 diff recorded its parent's id and header CRC: the file found under the
    /// parent's name must be that very snapshot, not a newer one written over it or a copy of
    /// another renamed to it. (A version 1 diff names its parent by file name only.)
    private static func checkParentIdentity(_ parent: SnapshotReader, of child: SnapshotReader) throws(SnapshotFormatError) {
        guard let expected = child.header.parent else { return }
        let found = parent.header.identity
        guard found == expected else {
            throw .chain(
                path: child.path,
                reason: "was taken against parent \(expected), but \(parent.path) is \(found): the parent was replaced "
                    + "or is another snapshot; this chain cannot be composed")
        }
    }

    /// The device and inode of an open file: two paths naming one file are one link of a chain.
    private static func identity(of reader: SnapshotReader) throws(SnapshotFormatError) -> FileIdentity {
        guard let identity = FileIdentity(descriptor: reader.fileDescriptor) else {
            throw .systemCall(path: reader.path, name: "fstat", errno: errno)
        }
        return identity
    }
}

import SnapshotTestSupport
import Glibc
import GuestMemory
import LinuxSystem
import SnapshotFormat
import Testing
import TestSupport

/// Version 2 of the format (docs/FORMAT.md): checksums over everything that decides what memory
/// a file holds, identities that tie a diff to its exact parent, feature flags, sections, the
/// stricter layout rules, safe paths and the reading of version 1 files.
@Suite(.serialized) struct SnapshotVersion2Tests {
    let directory = TemporaryDirectory()
    let headerSize = SnapshotLayout.headerSize(regionCount: 2)
    let table = UInt64(SnapshotLayout.fixedHeaderLength(version: SnapshotLayout.formatVersion))

    private func write(_ name: String) throws -> String {
        let path = directory.path(name)
        try SnapshotWriter.writeFull(memory: SnapshotFixtures.memory(ramPages: 64, highPages: 16), state: [7, 8, 9], to: path)
        return path
    }

    private func openError(_ path: String) -> SnapshotFormatError? {
        do throws(SnapshotFormatError) { _ = try SnapshotChain(path: path); return nil } catch { return error }
    }

    @Test(arguments: [false, true])
    func aClearedOrSetBitmapBitIsRefused(setting: Bool) throws {
        let path = try write("bitmap.snap")
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let page = try #require((0..<ram.pageCount).first { ram.isPresent(PageIndex($0)) != setting })
        let offset = ram.bitmapOffset + page / 8
        let byte = SnapshotFixtures.bytes(path, at: offset, count: 1)[0]
        SnapshotFixtures.patch(path, at: offset, [byte ^ UInt8(1 << (page % 8))])
        let error = try #require(openError(path))
        guard case .tableChecksum(_, let table, _, _) = error else { Issue.record("wrong error \(error)"); return }
        #expect(table == "region ram bitmap")
    }

    /// A zero page (clear bit) of a full snapshot with bytes in the file would read differently
    /// under a mapped restore: verification refuses it.
    @Test func bytesUnderAClearBitOfAFullSnapshotAreFoundByVerification() throws {
        let path = try write("hole.snap")
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let page = try #require((0..<ram.pageCount).first { !ram.isPresent(PageIndex($0)) })
        try SnapshotChain(path: path).verifyAllPages()
        SnapshotFixtures.patch(path, at: ram.pagesOffset + page * 4096 + 100, [0x5A])
        #expect {
            try SnapshotChain(path: path).verifyAllPages()
        } throws: { error in
            (error as? SnapshotFormatError)?.description.contains("page \(page)") == true
        }
    }

    /// A set bit over a hole in a full snapshot (Engram's writer never makes one) is read: the
    /// page reads as zeros, so its CRC entry must be the zero page's, and any other is refused
    /// when the page is read.
    @Test func aSetBitOverAHoleInAFullSnapshotReadsAsZeros() throws {
        let path = try write("set-hole.snap")
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let page = try #require((0..<ram.pageCount).first { !ram.isPresent(PageIndex($0)) })
        let entry = table + 224 * UInt64(ram.index)
        func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) } }
        let offset = ram.bitmapOffset + page / 8
        SnapshotFixtures.patch(path, at: offset, [SnapshotFixtures.bytes(path, at: offset, count: 1)[0] | UInt8(1 << (page % 8))])
        let bitmap = SnapshotFixtures.bytes(path, at: ram.bitmapOffset, count: Int((ram.pageCount + 63) / 64 * 8))
        SnapshotFixtures.patch(path, at: entry + 216, le32(CRC32C.checksum(bitmap)))
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        // The writer left the clear bit's CRC entry 0: reading the page finds the mismatch.
        #expect(try SnapshotReader(path: path).region(named: "ram")?.isPresent(PageIndex(page)) == true)
        #expect {
            try SnapshotChain(path: path).verifyAllPages()
        } throws: { error in
            (error as? SnapshotFormatError)?.description.contains("page \(page)") == true
        }
        SnapshotFixtures.patch(path, at: ram.crcTableOffset + 4 * page, le32(0x98F9_4189))
        let crcs = SnapshotFixtures.bytes(path, at: ram.crcTableOffset, count: Int(ram.pageCount * 4))
        SnapshotFixtures.patch(path, at: entry + 220, le32(CRC32C.checksum(crcs)))
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        try SnapshotChain(path: path).verifyAllPages()
        let reader = try SnapshotReader(path: path)
        let region = try #require(reader.region(named: "ram"))
        #expect(try reader.readPage(region, page: PageIndex(page)) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func aFlippedCRCTableConfigurationOrStateByteIsRefused() throws {
        let path = try write("tables.snap")
        let reader = try SnapshotReader(path: path)
        let ram = try #require(reader.region(named: "ram"))
        let cases: [(UInt64, (SnapshotFormatError) -> Bool)] = [
            // Page 0's entry: page 0 is stored (an entry readers use).
            (ram.crcTableOffset + 1, { if case .tableChecksum(_, "region ram CRC table", _, _) = $0 { true } else { false } }),
            (reader.header.configurationOffset + 3, { if case .configurationChecksum = $0 { true } else { false } }),
            (reader.header.stateOffset + reader.header.stateLength - 1, { if case .stateChecksum = $0 { true } else { false } }),
            (100, { if case .headerChecksum = $0 { true } else { false } }),
        ]
        for (offset, matches) in cases {
            let byte = SnapshotFixtures.bytes(path, at: offset, count: 1)[0]
            SnapshotFixtures.patch(path, at: offset, [byte ^ 0x10])
            let error = try #require(openError(path), "offset \(offset)")
            #expect(matches(error), "offset \(offset): \(error)")
            SnapshotFixtures.patch(path, at: offset, [byte])
        }
        _ = try SnapshotChain(path: path)
    }

    /// A sparse guest: stored runs that fill whole 64-page groups, groups mixing stored and absent
    /// pages, runs of empty groups, and a short last group (4000 pages).
    private func writeSparse(_ name: String) throws -> (path: String, filled: Set<UInt64>) {
        let pages: UInt64 = 4000
        let filled = Set(Array(0..<200) + [1000] + Array(2000..<2100) + [3999] as [UInt64])
        let ram = try GuestRegion(name: "ram", sizeInBytes: pages * 4096, backing: .memfd)
        for page in filled { try ram.write(SnapshotFixtures.pageBytes(region: "ram", page: page), at: RegionOffset(page * 4096)) }
        let memory = GuestMemoryMap(regions: [ram], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
        ])
        let path = directory.path(name)
        try SnapshotWriter.writeFull(memory: memory, state: [1], to: path)
        return (path, filled)
    }

    /// Readers check a CRC table stepping over the runs of 64-page groups with no stored page; on
    /// a table as written that is its checksum as stored.
    @Test func theStoredGroupsChecksumOfAWrittenTableIsItsChecksum() throws {
        let (path, filled) = try writeSparse("sparse.snap")
        let reader = try SnapshotReader(path: path)
        let region = try #require(reader.region(named: "ram"))
        #expect(region.bitmap.setCount == UInt64(filled.count))
        #expect(region.pageCRCs.checksum(stored: region.bitmap) == region.pageCRCs.checksum())
        #expect(region.pageCRCs.checksum(stored: region.bitmap) == reader.header.regions[0].crcTableCRC)
        // An empty bitmap takes every entry as 0: the CRC of the table's length of zeros.
        #expect(region.pageCRCs.checksum(stored: PageBitmap(pageCount: region.pageCount))
                    == CRC32C.checksum([UInt8](repeating: 0, count: Int(region.pageCount) * 4)))
    }

    /// An entry in a group of pages the file does not store is never read: changing it leaves the
    /// file readable, while `snapshot verify` (and `--verify`), which check the table's bytes as
    /// stored, find the writer's rule broken. One beside a stored page, or of one, is refused.
    @Test func aChangedEntryIsRefusedUnlessNoReaderCanUseIt() throws {
        let (path, _) = try writeSparse("entries.snap")
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let verifyError = { () -> SnapshotFormatError? in
            do throws(SnapshotFormatError) { try SnapshotChain(path: path).verifyAllPages(); return nil } catch { return error }
        }
        // Page 500: its group (448 ..< 512) holds no stored page.
        SnapshotFixtures.patch(path, at: ram.crcTableOffset + 4 * 500 + 2, [0x77])
        #expect(openError(path) == nil)
        guard case .tableChecksum(_, "region ram CRC table", _, _)? = verifyError() else { Issue.record("verify took it"); return }
        SnapshotFixtures.patch(path, at: ram.crcTableOffset + 4 * 500 + 2, [0])
        try SnapshotChain(path: path).verifyAllPages()
        // Page 1001 (absent, beside stored 1000) and page 150 (stored).
        for page: UInt64 in [1001, 150] {
            let offset = ram.crcTableOffset + 4 * page + 1
            let byte = SnapshotFixtures.bytes(path, at: offset, count: 1)[0]
            SnapshotFixtures.patch(path, at: offset, [byte ^ 0x40])
            guard case .tableChecksum(_, "region ram CRC table", _, _)? = openError(path) else { Issue.record("page \(page): opened"); return }
            SnapshotFixtures.patch(path, at: offset, [byte])
        }
    }

    @Test func aDamagedSectionIsNamedEvenWhenTheAreaChecksumIsResealed() throws {
        let path = try write("section.snap")
        let reader = try SnapshotReader(path: path)
        let last = reader.header.stateOffset + reader.header.stateLength - 1
        SnapshotFixtures.patch(path, at: last, [SnapshotFixtures.bytes(path, at: last, count: 1)[0] ^ 1])
        let state = SnapshotFixtures.bytes(path, at: reader.header.stateOffset, count: Int(reader.header.stateLength))
        let crc = CRC32C.checksum(state)
        SnapshotFixtures.patch(path, at: 304, (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) })
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        let error = try #require(openError(path))
        guard case .sections(.checksum(_, let section, _, _)) = error else { Issue.record("wrong error \(error)"); return }
        #expect(section == SnapshotWriter.testSectionName)
    }

    @Test func unknownIncompatibleFlagsAreRefusedAndUnknownCompatibleOnesRead() throws {
        let path = try write("flags.snap")
        SnapshotFixtures.patch(path, at: 360, [0, 0, 0, 0, 0, 0, 0, 0x80])
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        #expect(try SnapshotReader(path: path).header.features.compatible == 1 << 63)
        SnapshotFixtures.patch(path, at: 368, [4])
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        let error = try #require(openError(path))
        #expect(error.description.contains("incompatible feature bits") && error.description.contains("0x4"))
    }

    @Test func paddingTrailingBytesAndOverlappingPlacementsAreRefused() throws {
        let padded = try write("padding.snap")
        SnapshotFixtures.patch(padded, at: UInt64(headerSize - 8), [1])
        SnapshotFixtures.resealHeader(padded, headerSize: headerSize)
        #expect(openError(padded)?.description.contains("padding") == true)

        let reserved = try write("reserved.snap")
        SnapshotFixtures.patch(reserved, at: 400, [1])
        SnapshotFixtures.resealHeader(reserved, headerSize: headerSize)
        #expect(openError(reserved)?.description.contains("reserved") == true)

        let trailing = try write("trailing.snap")
        let fd = open(trailing, O_WRONLY | O_APPEND)
        #expect(Glibc.write(fd, [0], 1) == 1)
        close(fd)
        #expect(openError(trailing)?.description.contains("file size") == true)

        // Region "high" placed over "ram" in guest-physical memory.
        let overlapping = try write("overlap.snap")
        let ramGuest = SnapshotFixtures.bytes(overlapping, at: table + 80, count: 8)
        SnapshotFixtures.patch(overlapping, at: table + 224 + 80, ramGuest)
        SnapshotFixtures.resealHeader(overlapping, headerSize: headerSize)
        #expect(openError(overlapping)?.description.contains("overlaps") == true)
    }

    @Test(arguments: [".", "..", String(repeating: "p", count: 256)])
    func parentNamesThatAreNotFileNamesAreRefused(name: String) throws {
        _ = try write("base.snap")
        let path = directory.path("diff.snap")
        try SnapshotWriter.writeDiff(memory: SnapshotFixtures.memory(ramPages: 64, highPages: 16), dirtyPages: [:],
                                     parentFileName: "base.snap", state: [], to: path)
        var field = Array(name.utf8)
        field += [UInt8](repeating: 0, count: 256 - field.count)
        SnapshotFixtures.patch(path, at: 32, field)
        SnapshotFixtures.resealHeader(path, headerSize: headerSize)
        #expect(openError(path)?.description.contains("parent file name") == true)
    }

    /// The issue's reproduction: a full snapshot, a diff on it, then a new full snapshot
    /// written over the first. The diff must not compose with the new file.
    @Test func aReplacedOrRenamedParentIsRefusedAndReplacingAParentNeedsForce() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 64, highPages: 16)
        let base = try write("a.snap")
        let diff = directory.path("b.snap")
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "a.snap", state: [], to: diff)
        #expect(try SnapshotChain(path: diff).files.count == 2)
        #expect(SnapshotDirectory.dependents(of: base) == [diff])

        // Replacing a.snap is refused while b.snap depends on it, and a.snap is left as it was.
        let before = try SnapshotReader(path: base).header.identity
        #expect {
            try SnapshotWriter.writeFull(memory: memory, state: [1], to: base)
        } throws: { error in
            guard let error = error as? SnapshotFormatError, case .refusedPath(_, let reason) = error else { return false }
            return reason.contains("b.snap") && reason.contains("--force")
        }
        #expect(try SnapshotReader(path: base).header.identity == before)

        // With force it is replaced, and the chain is then refused naming both files.
        try SnapshotWriter.writeFull(memory: memory, state: [1], to: base, options: WriteOptions(force: true))
        let error = try #require(openError(diff))
        #expect(error.description.contains("b.snap") && error.description.contains("a.snap") && error.description.contains("replaced"))

        // An unrelated snapshot renamed to the parent's name is refused the same way.
        let other = try write("other.snap")
        let third = directory.path("c.snap")
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "a.snap", state: [], to: third)
        #expect(rename(other, base) == 0)
        #expect(openError(third)?.description.contains("replaced") == true)
    }

    @Test func theMergerRefusesAReplacedParentToo() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 64, highPages: 16)
        let base = try write("a.snap")
        let diff = directory.path("b.snap")
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "a.snap", state: [], to: diff)
        try SnapshotWriter.writeFull(memory: memory, state: [1], to: base, options: WriteOptions(force: true))
        #expect(throws: SnapshotFormatError.self) { try SnapshotMerger.merge(top: diff, into: directory.path("m.snap")) }
        #expect(FileStatus(path: directory.path("m.snap")) == nil)
    }

    @Test func pathsThatAreNotRegularFilesAreRefusedAndLeftUntouched() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        let fifo = directory.path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let target = directory.path("target")
        try AtomicFile.write([1, 2, 3], to: target)
        let link = directory.path("link")
        #expect(symlink(target, link) == 0)
        let subdirectory = directory.path("dir")
        #expect(mkdir(subdirectory, 0o700) == 0)
        let device = directory.path("null")
        let madeDevice = mknod(device, S_IFCHR | 0o600, dev_t(0x103)) == 0  // 1:3, like /dev/null
        let socketPath = directory.path("sock")
        let listener = try UnixSocketPath.bind(socketPath)
        defer { _ = listener }
        var paths = [(fifo, "FIFO"), (link, "symbolic link"), (subdirectory, "directory"), (socketPath, "socket"),
                     (directory.url.path + "/a\0b.snap", "NUL")]
        if madeDevice { paths.append((device, "character device")) }
        for (path, what) in paths {
            do throws(SnapshotFormatError) {
                try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
                Issue.record("\(what): written")
            } catch {
                guard case .refusedPath = error else { Issue.record("\(what): wrong error \(error)"); continue }
                #expect(error.description.contains(what) && !error.description.contains("\n"), "\(error)")
            }
        }
        #expect(FileStatus(path: fifo, followingLinks: false)?.kind == .fifo)
        #expect(FileStatus(path: link, followingLinks: false)?.kind == .symbolicLink)
        #expect(SnapshotFixtures.bytes(target, at: 0, count: 3) == [1, 2, 3] && SnapshotFixtures.fileSize(target) == 3)
        #expect(FileStatus(path: subdirectory)?.kind == .directory)
        #expect(FileStatus(path: socketPath, followingLinks: false)?.kind == .socket)
        if madeDevice { #expect(FileStatus(path: device, followingLinks: false)?.kind == .characterDevice) }
        #expect(FileStatus(path: directory.path("a")) == nil)
    }

    @Test func theVMsOwnFilesAreNeverReplaced() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        let own = directory.path("ram")
        try AtomicFile.write([5], to: own)
        let fd = open(own, O_RDONLY)
        defer { close(fd) }
        let options = WriteOptions(force: true, protectedFiles: [try #require(FileIdentity(descriptor: fd))])
        #expect(throws: SnapshotFormatError.self) { try SnapshotWriter.writeFull(memory: memory, state: [], to: own, options: options) }
        #expect(SnapshotFixtures.fileSize(own) == 1)
    }

    /// A version 1 file (the previous format, made here by rewriting a version 2 file's header
    /// and state as version 1 wrote them) still reads, with the same pages.
    @Test func aVersion1FileStillReads() throws {
        let path = try write("v1.snap")
        let legacyState = Array(#"{"version":2}"#.utf8)
        try SnapshotDowngrade.toVersion1(path, state: legacyState)
        let reader = try SnapshotReader(path: path)
        #expect(reader.header.version == 1 && reader.header.snapshotID == .none && reader.configuration.sections.isEmpty)
        #expect(reader.stateSections[StateSections.legacyMachineJSON]?.payload == legacyState)
        try reader.verifyAllPages()
        let ram = try #require(reader.region(named: "ram"))
        for page in [UInt64(0), 3, 63] {
            #expect(try reader.readPage(ram, page: PageIndex(page)) == SnapshotFixtures.pageBytes(region: "ram", page: page))
        }
    }

    @Test func sectionContainersRoundTripAndRefuseDamage() throws {
        let sections = StateSections([
            StateSection(name: "vcpu.0", version: 1, payload: Array("{}".utf8)),
            StateSection(name: "serial", version: 3, payload: []),
        ])
        let bytes = sections.encoded()
        #expect(try StateSections(decoding: bytes, what: "t") == sections)
        #expect(throws: SectionError.self) { try StateSections(decoding: bytes + [0], what: "t") }
        #expect(throws: SectionError.self) { try StateSections(decoding: Array(bytes.dropLast()), what: "t") }
        var renamed = bytes
        renamed[16] = UInt8(ascii: "V")  // names are lowercase
        #expect(throws: SectionError.self) { try StateSections(decoding: renamed, what: "t") }
        var huge = bytes
        huge[8] = 0xFF
        #expect(throws: SectionError.self) { try StateSections(decoding: huge, what: "t") }
    }
}

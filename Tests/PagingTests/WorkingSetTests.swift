import SnapshotTestSupport
import Foundation
import Glibc
import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport

/// The working-set file format: what it encodes, what it refuses, where it is kept.
@Suite struct WorkingSetTests {
    let directory = TemporaryDirectory()

    static let sample = WorkingSet(
        fingerprint: 0x0123_4567_89AB_CDEF,
        pages: [
            PageReference(region: 0, page: 7), PageReference(region: 1, page: 0), PageReference(region: 0, page: 6),
            PageReference(region: PageReference.maximumRegion, page: PageReference.maximumPage),
        ],
        recordedMilliseconds: 3000)

    /// `bytes` with its trailing CRC32C made right again, so a later check is the one reached.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        let body = Array(bytes.dropLast(4))
        let crc = CRC32C.checksum(body)
        return body + (0..<4).map { UInt8(truncatingIfNeeded: crc >> ($0 * 8)) }
    }

    static func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try WorkingSet(decoding: bytes, origin: "the test set")
            return nil
        } catch { return error.description }
    }

    @Test func encodingRoundTrips() throws {
        let bytes = Self.sample.encoded()
        #expect(bytes.count == 32 + 4 * 8 + 4)
        #expect(Array(bytes[0..<8]) == Array("ENGRAMWS".utf8))
        #expect(Array(bytes[8..<16]) == [1, 0, 0, 0, 4, 0, 0, 0])
        // The first page, region << 56 | page, little-endian.
        #expect(Array(bytes[32..<40]) == [7, 0, 0, 0, 0, 0, 0, 0])
        #expect(try WorkingSet(decoding: bytes, origin: "test") == Self.sample)
        let empty = WorkingSet(fingerprint: 1, pages: [], recordedMilliseconds: 0)
        #expect(try WorkingSet(decoding: empty.encoded(), origin: "test") == empty)
    }

    @Test func pageReferencePacksRegionAboveThePage() {
        let reference = PageReference(region: 3, page: 0x12_3456)
        #expect(reference.packed == 3 << 56 | 0x12_3456)
        #expect(PageReference(packed: reference.packed) == reference)
        let last = PageReference(region: 255, page: PageReference.maximumPage)
        #expect(last.packed == .max && PageReference(packed: .max) == last)
    }

    @Test func decodingRefusesDamage() {
        let good = Self.sample.encoded()
        var magic = good
        magic[0] = UInt8(ascii: "X")
        #expect(Self.refusal(Self.resealed(magic))?.contains("ENGRAMWS") == true)
        #expect(Self.refusal(Array(good.prefix(20)))?.contains("ENGRAMWS") == true)
        #expect(Self.refusal([])?.contains("ENGRAMWS") == true)

        var version = good
        version[8] = 2
        #expect(Self.refusal(Self.resealed(version))?.contains("format version 2") == true)

        #expect(Self.refusal(good + [0, 0, 0, 0, 0, 0, 0, 0])?.contains("4 pages need 68") == true)
        #expect(Self.refusal(Array(good.dropLast(8)))?.contains("4 pages need 68") == true)

        var flipped = good
        flipped[45] ^= 0x10
        #expect(Self.refusal(flipped)?.contains("CRC32C mismatch") == true)
        var crc = good
        crc[crc.count - 1] ^= 1
        #expect(Self.refusal(crc)?.contains("CRC32C mismatch") == true)
        // The origin names the set in every message.
        #expect(Self.refusal(crc)?.contains("the test set") == true)
    }

    @Test func decodingRefusesDuplicatesAndTooManyPages() {
        let twice = WorkingSet(
            fingerprint: 1, pages: [PageReference(region: 1, page: 9), PageReference(region: 0, page: 9), PageReference(region: 1, page: 9)],
            recordedMilliseconds: 0)
        #expect(Self.refusal(twice.encoded())?.contains("page 9 of region 1 is listed twice") == true)

        // A header claiming one page more than allowed is refused before its length is looked at.
        var header = WorkingSet(fingerprint: 1, pages: [], recordedMilliseconds: 0).encoded()
        let count = UInt32(WorkingSet.maximumPages + 1)
        for index in 0..<4 { header[12 + index] = UInt8(truncatingIfNeeded: count >> (index * 8)) }
        #expect(Self.refusal(Self.resealed(header))?.contains("at most \(WorkingSet.maximumPages)") == true)
    }

    @Test func checkRefusesAnotherSnapshotAndPagesOutside() throws {
        let source = TestPageSource(pageCounts: [10, 4]) { _, _ in false }
        let inside = WorkingSet(
            fingerprint: 5, pages: [PageReference(region: 0, page: 9), PageReference(region: 1, page: 3)], recordedMilliseconds: 1)
        try inside.check(against: source, fingerprint: 5)

        let wrongFingerprint = #expect(throws: PageSourceError.self) { try inside.check(against: source, fingerprint: 6) }
        #expect(wrongFingerprint?.description.contains("another snapshot") == true)
        for outside in [PageReference(region: 0, page: 10), PageReference(region: 1, page: 4), PageReference(region: 2, page: 0)] {
            let set = WorkingSet(fingerprint: 5, pages: [outside], recordedMilliseconds: 1)
            let error = #expect(throws: PageSourceError.self) { try set.check(against: source, fingerprint: 5) }
            #expect(error?.description.contains("page \(outside.page) of region \(outside.region)") == true)
        }
    }

    @Test func fileIsPrivateAndReplacedWhole() throws {
        let path = directory.path("snap.workingset")
        #expect(try WorkingSetFile.read(path) == nil)
        try WorkingSetFile.write(Self.sample, to: path)
        #expect(try WorkingSetFile.read(path) == Self.sample)
        var status = stat()
        let statResult = stat(path, &status)
        #expect(statResult == 0 && status.st_mode & 0o777 == 0o600)

        let second = WorkingSet(fingerprint: 9, pages: [PageReference(region: 0, page: 1)], recordedMilliseconds: 10)
        try WorkingSetFile.write(second, to: path)
        #expect(try WorkingSetFile.read(path) == second)
        // Written through a temporary file and rename: nothing else is left in the directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["snap.workingset"])
        #expect(WorkingSetFile.path(forSnapshot: "/x/vm.snap") == "/x/vm.snap.workingset")

        // A damaged file is an error, not a missing set.
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: path))
        #expect(throws: PageSourceError.self) { _ = try WorkingSetFile.read(path) }
        // A directory where the file should go cannot be written over.
        let blocked = directory.path("dir.workingset")
        try FileManager.default.createDirectory(atPath: blocked + "/inside", withIntermediateDirectories: true)
        #expect(throws: PageSourceError.self) { try WorkingSetFile.write(second, to: blocked) }
    }

    @Test func snapshotChainKeepsItsSetBesideItsFile() throws {
        let path = directory.path("vm.snap")
        try SnapshotWriter.writeFull(memory: try SnapshotRestoreTests.memory(), state: [1, 2], to: path)
        let chain = try SnapshotChain(path: path)
        #expect(try chain.loadWorkingSet() == nil)
        let set = WorkingSet(
            fingerprint: chain.fingerprint, pages: [PageReference(region: 1, page: 255), PageReference(region: 0, page: 0)],
            recordedMilliseconds: 7)
        try chain.storeWorkingSet(set)
        #expect(try chain.loadWorkingSet() == set)
        #expect(try WorkingSetFile.read(WorkingSetFile.path(forSnapshot: chain.path)) == set)

        let alien = WorkingSet(fingerprint: chain.fingerprint ^ 1, pages: [], recordedMilliseconds: 7)
        #expect(throws: PageSourceError.self) { try chain.storeWorkingSet(alien) }
        #expect(try chain.loadWorkingSet() == set)
        // One left beside the file by another snapshot is refused when loaded.
        try WorkingSetFile.write(alien, to: WorkingSetFile.path(forSnapshot: chain.path))
        let error = #expect(throws: PageSourceError.self) { _ = try chain.loadWorkingSet() }
        #expect(error?.description.contains("another snapshot") == true)
    }
}

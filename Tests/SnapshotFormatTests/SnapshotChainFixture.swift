import SnapshotTestSupport
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// A full snapshot and two diffs on top of it, written from the two-region fixture memory as
/// it changes: each diff holds exactly the pages changed since its parent.
struct SnapshotChainFixture {
    let memory: GuestMemoryMap
    let basePath: String
    let firstDiffPath: String
    let topPath: String

    /// ram page 6 (filled in the base) is zeroed by the first diff.
    static let zeroedPage: UInt64 = 6
    /// ram page 4 is changed by both diffs: the top one wins.
    static let twiceChangedPage: UInt64 = 4
    /// ram page 500 is zero in the base and filled by the top diff.
    static let newPage: UInt64 = 500

    init(in directory: TemporaryDirectory) throws {
        memory = try SnapshotFixtures.memory()
        let ram = try #require(memory.region(named: "ram"))
        let high = try #require(memory.region(named: "high"))
        basePath = directory.path("base.snap")
        firstDiffPath = directory.path("diff1.snap")
        topPath = directory.path("diff2.snap")
        try SnapshotWriter.writeFull(memory: memory, state: [1], to: basePath)

        try ram.write(Self.bytes(0xA1), at: RegionOffset(3 * 4096))
        try ram.write(Self.bytes(0xA2), at: RegionOffset(Self.twiceChangedPage * 4096))
        try ram.write([UInt8](repeating: 0, count: 4096), at: RegionOffset(Self.zeroedPage * 4096))
        try high.write(Self.bytes(0xA3), at: RegionOffset(2 * 4096))
        try SnapshotWriter.writeDiff(
            memory: memory, dirtyPages: ["ram": Self.bitmap(1024, [3, Self.twiceChangedPage, Self.zeroedPage]), "high": Self.bitmap(256, [2])],
            parentFileName: "base.snap", state: [2], to: firstDiffPath)

        try ram.write(Self.bytes(0xB2), at: RegionOffset(Self.twiceChangedPage * 4096))
        try ram.write(Self.bytes(0xB3), at: RegionOffset(Self.newPage * 4096))
        try SnapshotWriter.writeDiff(
            memory: memory, dirtyPages: ["ram": Self.bitmap(1024, [Self.twiceChangedPage, Self.newPage])],
            parentFileName: "diff1.snap", state: [3], to: topPath)
    }

    /// A page whose every byte is `value`.
    static func bytes(_ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: 4096) }

    /// A bitmap of `pageCount` pages with `pages` set.
    static func bitmap(_ pageCount: UInt64, _ pages: [UInt64]) -> PageBitmap {
        var bitmap = PageBitmap(pageCount: pageCount)
        for page in pages { bitmap.insert(PageIndex(page)) }
        return bitmap
    }

    /// Every page of `region` in `chain`, read through `readPages` in one call.
    static func composed(_ chain: SnapshotChain, region: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xEE, count: Int(chain.regions[region].sizeInBytes))
        var span = bytes.mutableSpan
        var raw = span.mutableBytes
        try chain.readPages(of: region, from: 0, into: &raw)
        return bytes
    }
}

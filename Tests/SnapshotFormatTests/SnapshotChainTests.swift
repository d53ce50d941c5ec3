import SnapshotTestSupport
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// Composing a full snapshot and its diffs into one view, and refusing chains that are broken.
@Suite struct SnapshotChainTests {
    let directory = TemporaryDirectory()

    @Test func aFullSnapshotAndTwoDiffsComposeToTheLatestMemory() throws {
        let fixture = try SnapshotChainFixture(in: directory)
        let chain = try SnapshotChain(path: fixture.topPath)
        #expect(chain.files.map(\.path) == [fixture.topPath, fixture.firstDiffPath, fixture.basePath])
        #expect(chain.testState == [3])  // the top file's
        #expect(chain.base.kind == .full)

        // The newest file that stores a page owns it; a page no file stores is zero.
        #expect(chain.owner(region: 0, page: PageIndex(SnapshotChainFixture.twiceChangedPage)) == 0)
        #expect(chain.owner(region: 0, page: 3) == 1)
        #expect(chain.owner(region: 0, page: PageIndex(SnapshotChainFixture.zeroedPage)) == 1)
        #expect(chain.owner(region: 0, page: 0) == 2)
        #expect(chain.owner(region: 0, page: 1) == SnapshotChain.zeroOwner)
        #expect(chain.owner(region: 1, page: 2) == 1)
        // The stored pages are exactly those with an owner, in every region.
        for region in chain.regions.indices {
            let stored = chain.storedPages(region: region)
            let owned = (0..<chain.regions[region].pageCount).filter { chain.owner(region: region, page: PageIndex($0)) != SnapshotChain.zeroOwner }
            #expect(stored.setCount == UInt64(owned.count) && owned.allSatisfy { stored.contains(PageIndex($0)) }, "region \(region)")
        }

        // Page for page, the chain reads as the memory now is: the twice-changed page has the
        // top diff's bytes, the page zeroed in a diff reads zero, not the base's bytes.
        for (index, region) in fixture.memory.regions.enumerated() {
            let composed = try SnapshotChainFixture.composed(chain, region: index)
            #expect(composed == (try region.read(count: Int(region.sizeInBytes), at: RegionOffset(0))), "region \(region.name)")
        }
        let ram = try SnapshotChainFixture.composed(chain, region: 0)
        let page = { (n: UInt64) in Array(ram[Int(n) * 4096..<Int(n + 1) * 4096]) }
        #expect(page(SnapshotChainFixture.twiceChangedPage) == SnapshotChainFixture.bytes(0xB2))
        #expect(page(SnapshotChainFixture.zeroedPage) == SnapshotChainFixture.bytes(0))
        #expect(page(SnapshotChainFixture.newPage) == SnapshotChainFixture.bytes(0xB3))
        try chain.verifyAllPages()
    }

    /// The zero stretches a lazy restore's fill steps over, for a chain of three files (owners
    /// page by page) and for one file (its bitmap a word at a time), match a page-by-page look.
    @Test func zeroStretchesMatchAPageByPageLook() throws {
        let fixture = try SnapshotChainFixture(in: directory)
        for path in [fixture.topPath, fixture.basePath] {
            let chain = try SnapshotChain(path: path)
            for region in chain.regions.indices {
                let pageCount = chain.regions[region].pageCount
                for start in Set([0, 1, 2, 5, 7, 63, 64, 65, 499, 501, pageCount - 1, pageCount]) where start <= pageCount {
                    var page = start
                    while page < pageCount, chain.owner(region: region, page: PageIndex(page)) == SnapshotChain.zeroOwner { page += 1 }
                    let counted = chain.zeroPageCount(of: region, from: PageIndex(start), before: PageIndex(pageCount))
                    #expect(counted == page - start, "\(path) region \(region) from \(start)")
                }
            }
        }
    }

    @Test func aMissingParentIsAChainError() throws {
        let path = directory.path("orphan.snap")
        try SnapshotWriter.writeDiff(memory: SnapshotFixtures.memory(ramPages: 16, highPages: 16), dirtyPages: [:],
                                     parentFileName: "gone.snap", state: [], to: path)
        let error = try #require(chainError(path))
        #expect(error == .chain(path: path, reason: "names parent gone.snap, which is not in its directory"))
        #expect(error.description.contains("gone.snap"))
    }

    @Test func parentsThatLoopAreAChainError() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "b.snap", state: [], to: directory.path("a.snap"))
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "a.snap", state: [], to: directory.path("b.snap"))
        try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "self.snap", state: [], to: directory.path("self.snap"))
        for name in ["b.snap", "self.snap"] {
            let error = try #require(chainError(directory.path(name)))
            guard case .chain(_, let reason) = error else { Issue.record("\(name): wrong error \(error)"); continue }
            #expect(reason.contains("loop"), "\(name): \(reason)")
        }
    }

    @Test func aParentWithOtherRegionsIsAChainError() throws {
        try SnapshotWriter.writeFull(memory: SnapshotFixtures.memory(ramPages: 32, highPages: 16), state: [], to: directory.path("base.snap"))
        let top = directory.path("top.snap")
        try SnapshotWriter.writeDiff(memory: SnapshotFixtures.memory(ramPages: 16, highPages: 16), dirtyPages: [:],
                                     parentFileName: "base.snap", state: [], to: top)
        let error = try #require(chainError(top))
        guard case .chain(_, let reason) = error else { Issue.record("wrong error \(error)"); return }
        #expect(reason.contains("different regions"))
    }

    @Test func aChainLongerThanTheCapIsRefusedWithAHint() throws {
        let memory = try SnapshotFixtures.memory(ramPages: 16, highPages: 16)
        try SnapshotWriter.writeFull(memory: memory, state: [], to: directory.path("0.snap"))
        for n in 1...SnapshotChain.maximumLength {
            try SnapshotWriter.writeDiff(memory: memory, dirtyPages: [:], parentFileName: "\(n - 1).snap", state: [], to: directory.path("\(n).snap"))
        }
        #expect(try SnapshotChain(path: directory.path("\(SnapshotChain.maximumLength - 1).snap")).files.count == SnapshotChain.maximumLength)
        let error = try #require(chainError(directory.path("\(SnapshotChain.maximumLength).snap")))
        guard case .chain(_, let reason) = error else { Issue.record("wrong error \(error)"); return }
        #expect(reason.contains("more than 64 files") && reason.contains("snapshot-merge"))
    }

    /// The error opening a chain at `path` throws, or nil if it opens.
    private func chainError(_ path: String) -> SnapshotFormatError? {
        do {
            _ = try SnapshotChain(path: path)
            return nil
        } catch {
            return error
        }
    }
}

import Foundation
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// Diff snapshots of a running test kernel (KVM dirty logging) and `engram snapshot-merge`.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct DiffSnapshotTests {
    let directory = TemporaryDirectory()

    @Test func diffsHoldOnlyChangedPagesAndTheMergedChainIsTheGuestsMemory() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        try process.command("fill 16 1", expect: "FILL ")
        let base = directory.path("base.snap")
        let full = try snapshot(socket, base)
        #expect(full["kind"] as? String == "full" && full["parent"] == nil)

        try process.command("fill 4 2", expect: "FILL ")
        let (firstTag, address) = try TestKernel.writeTag(process)
        let firstDiff = directory.path("diff1.snap")
        let report = try snapshot(socket, firstDiff, ["--diff"])
        #expect(report["kind"] as? String == "diff")
        #expect(report["parent"] as? String == base)
        #expect(report["state"] as? String == "running")

        let baseReader = try SnapshotReader(path: base)
        let diffReader = try SnapshotReader(path: firstDiff)
        #expect(diffReader.kind == .diff && diffReader.parentFileName == "base.snap")
        let baseRAM = try #require(baseReader.region(named: "ram"))
        let diffRAM = try #require(diffReader.region(named: "ram"))
        #expect(baseRAM.bitmap.setCount >= 4096)  // the 16 MiB fill at least
        #expect(diffRAM.bitmap.setCount >= 1024)  // the 4 MiB refill at least
        #expect(diffRAM.bitmap.setCount < baseRAM.bitmap.setCount / 2,
                "a diff holds what changed: \(diffRAM.bitmap.setCount) of \(baseRAM.bitmap.setCount) pages")
        #expect(diffRAM.pagesOffset == baseRAM.pagesOffset)  // the same layout, only sparser
        let tagPage = PageIndex(address / 4096)
        #expect(diffRAM.isPresent(tagPage))
        #expect(Self.text(try diffReader.readPage(diffRAM, page: tagPage), at: address, count: firstTag.utf8.count) == firstTag)
        try diffReader.verifyAllPages()

        // A second diff builds on the first and stays paused, so a full snapshot of the same
        // moment can be compared with the merged chain.
        let (secondTag, _) = try TestKernel.writeTag(process)
        let top = directory.path("diff2.snap")
        let second = try snapshot(socket, top, ["--diff", "--stay-paused"])
        #expect(second["parent"] as? String == firstDiff)
        let topReader = try SnapshotReader(path: top)
        let topRAM = try #require(topReader.region(named: "ram"))
        #expect(topReader.parentFileName == "diff1.snap")
        #expect(topRAM.isPresent(tagPage) && topRAM.bitmap.setCount < diffRAM.bitmap.setCount)
        let live = directory.path("live.snap")
        _ = try snapshot(socket, live, ["--stay-paused"])
        #expect(try runEngram(["ctl", socket, "resume"]).status == 0)

        let merged = directory.path("merged.snap")
        let merge = try runEngram(["snapshot-merge", top, merged])
        #expect(merge.status == 0, "\(merge.errors)")
        #expect(merge.output.contains("merged 3 files into \(merged)"), "\(merge.output)")
        let mergedReader = try SnapshotReader(path: merged)
        #expect(mergedReader.kind == .full && mergedReader.state == topReader.state)
        try mergedReader.verifyAllPages()
        let mergedRAM = try #require(mergedReader.region(named: "ram"))
        #expect(Self.text(try mergedReader.readPage(mergedRAM, page: tagPage), at: address, count: secondTag.utf8.count) == secondTag)
        // Every page the guest had when paused, and only those: nothing the guest wrote was missed.
        let liveReader = try SnapshotReader(path: live)
        #expect(mergedReader.regions.map(\.bitmap) == liveReader.regions.map(\.bitmap))
        #expect(mergedReader.regions.map(\.pageCRCs) == liveReader.regions.map(\.pageCRCs))

        let again = try runEngram(["snapshot-merge", top, merged])
        #expect(again.status != 0 && again.errors.contains("pass --force"), "\(again.errors)")
        #expect(try runEngram(["snapshot-merge", top, merged, "--force"]).status == 0)
        #expect(try TestKernel.ticks(process) > 0)
    }

    @Test func diffsThatCannotBeWrittenAreRefusedAndTheGuestRunsOn() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let early = try runEngram(["snapshot", socket, directory.path("early.snap"), "--diff"])
        #expect(early.status != 0 && early.errors.contains("HTTP 409"), "\(early.errors)")
        #expect(early.errors.contains("needs a previous snapshot of this VM; take a full one first"), "\(early.errors)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("early.snap")))
        #expect(try TestKernel.ticks(process) > 0)

        let base = directory.path("base.snap")
        _ = try snapshot(socket, base)
        let elsewhere = TemporaryDirectory()
        let away = try runEngram(["snapshot", socket, elsewhere.path("away.snap"), "--diff"])
        #expect(away.status != 0 && away.errors.contains("HTTP 400") && away.errors.contains("directory of its parent"), "\(away.errors)")
        let overParent = try runEngram(["snapshot", socket, base, "--diff"])
        #expect(overParent.status != 0 && overParent.errors.contains("HTTP 400"), "\(overParent.errors)")
        #expect(try SnapshotReader(path: base).kind == .full)

        // A diff whose write fails keeps the pages it fetched: the next diff still has them.
        let (tag, address) = try TestKernel.writeTag(process)
        let blocked = directory.path("blocked.snap")
        try FileManager.default.createDirectory(atPath: blocked, withIntermediateDirectories: false)
        let failed = try runEngram(["snapshot", socket, blocked, "--diff"])
        #expect(failed.status != 0 && failed.errors.contains("HTTP 400") && failed.errors.contains("it is a directory"), "\(failed.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).sorted() == ["api.sock", "base.snap", "blocked.snap"])
        #expect(try TestKernel.ticks(process) > 0)
        let retry = directory.path("retry.snap")
        let report = try snapshot(socket, retry, ["--diff"])
        #expect(report["parent"] as? String == base)
        let reader = try SnapshotReader(path: retry)
        let ram = try #require(reader.region(named: "ram"))
        #expect(ram.isPresent(PageIndex(address / 4096)), "the tag page was fetched by the failed diff and must not be lost")
        #expect(Self.text(try reader.readPage(ram, page: PageIndex(address / 4096)), at: address, count: tag.utf8.count) == tag)

        // A parent that was deleted cannot be built on.
        try FileManager.default.removeItem(atPath: retry)
        let orphan = try runEngram(["snapshot", socket, directory.path("orphan.snap"), "--diff"])
        #expect(orphan.status != 0 && orphan.errors.contains("HTTP 409") && orphan.errors.contains("is gone"), "\(orphan.errors)")
        #expect(try TestKernel.ticks(process) > 0)
    }

    /// `engram snapshot SOCKET PATH [extra]`, which must succeed; its JSON report.
    private func snapshot(_ socket: String, _ path: String, _ extra: [String] = []) throws -> [String: Any] {
        let result = try runEngram(["snapshot", socket, path] + extra)
        try #require(result.status == 0, "snapshot \(path) failed: \(result.errors)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
    }

    /// `count` bytes of `page` at the page offset of guest address `address`, as text.
    private static func text(_ page: [UInt8], at address: UInt64, count: Int) -> String {
        let offset = Int(address % 4096)
        return String(decoding: page[offset..<offset + count], as: UTF8.self)
    }
}

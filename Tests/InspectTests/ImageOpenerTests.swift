import Foundation
import Inspect
import Testing
import TestSupport

/// Formats are told apart by content; inputs that are none of them get one clear error.
@Suite struct ImageOpenerTests {
    let directory = TemporaryDirectory()

    func refusal(_ path: String) -> String {
        do { _ = try ImageOpener.open(path: path); return "opened" } catch { return error.description }
    }

    @Test func unknownAndDamagedInputsAreRefused() throws {
        let odd = directory.path("odd.bin")
        try Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }).write(to: URL(fileURLWithPath: odd))
        #expect(refusal(odd).contains("is not a memory image Engram reads"))
        #expect(refusal(odd).contains("5000 bytes"))

        let empty = directory.path("empty.bin")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(refusal(empty).contains("not a memory image"))

        #expect(refusal(directory.path("absent")).contains("No such file"))
        #expect(refusal(directory.url.path).contains("not a regular file"))

        let snapshot = directory.path("cut.snap")
        try Data(Array("ENGRAMSN".utf8) + [UInt8](repeating: 0, count: 100)).write(to: URL(fileURLWithPath: snapshot))
        #expect(refusal(snapshot).contains("cut.snap"))

        let workingSet = directory.path("x.workingset")
        try Data(Array("ENGRAMWS".utf8) + [UInt8](repeating: 0, count: 4088)).write(to: URL(fileURLWithPath: workingSet))
        #expect(refusal(workingSet).contains("working-set"))
        for message in [refusal(odd), refusal(empty), refusal(snapshot), refusal(workingSet)] {
            #expect(!message.contains("\n"))
        }
    }

    @Test func aRawFileIsPlacedByItsLayout() throws {
        let path = directory.path("ram.raw")
        try InspectFixtures.writeRaw(path, pages: 16) { $0 == 3 ? InspectFixtures.pageBytes(3) : nil }
        let image = try ImageOpener.open(path: path, layout: .engram)
        #expect(image.regions.count == 1)
        #expect(image.regions[0].ranges == [ImageRange(guestAddress: 0, sizeInBytes: 16 * 4096, regionOffset: 0)])
        #expect(try image.readPhysical(3 * 4096 + 100, count: 4) == Array(InspectFixtures.pageBytes(3)[100..<104]))
        #expect(RawLayout.pc.ranges(forSize: 4 << 30) == [
            ImageRange(guestAddress: 0, sizeInBytes: 3 << 30, regionOffset: 0),
            ImageRange(guestAddress: 4 << 30, sizeInBytes: 1 << 30, regionOffset: 3 << 30),
        ])
        #expect(RawLayout.pc.ranges(forSize: 0xD000_0000).count == 1)
        #expect(RawLayout.engram.ranges(forSize: 0xD000_0000).count == 2)
    }
}

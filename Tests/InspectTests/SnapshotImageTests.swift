import SnapshotTestSupport
import Foundation
import GuestMemory
import Inspect
import SnapshotFormat
import Testing
import TestSupport

/// An Engram snapshot read as an image: regions and placements from its table, pages from the
/// newest file of a chain, zero pages as zero spans, and registers from its state section.
@Suite struct SnapshotImageTests {
    let directory = TemporaryDirectory()

    @Test func regionsPagesAndPlacementsMatchTheMemory() throws {
        let memory = try InspectFixtures.memory { region, page in
            region == "ram" && page % 3 == 0 ? InspectFixtures.pageBytes(page) : nil
        }
        let path = directory.path("full.snap")
        try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
        let image = try ImageOpener.open(path: path)
        #expect(image.kind == "Engram snapshot")
        #expect(image.regions.map(\.name) == ["ram", "high"])
        #expect(image.regions[1].ranges == [ImageRange(guestAddress: 1 << 32, sizeInBytes: 64 * 4096, regionOffset: 0)])
        #expect(try image.readPhysical(9 * 4096, count: 4096) == InspectFixtures.pageBytes(9))
        #expect(try image.readPhysical(10 * 4096, count: 16) == [UInt8](repeating: 0, count: 16))
        #expect(image.isZeroSpan(region: 1, pages: 0..<64))
        #expect(throws: InspectError.self) { try image.readPhysical(0x1000_0000, count: 1) }
    }

    @Test func registersComeFromTheStateSection() throws {
        let memory = try InspectFixtures.memory { _, _ in nil }
        // kvm_sregs with cr0, cr3, cr4 and efer at their ABI offsets; kvm_regs with rip at 128.
        var sregs = [UInt8](repeating: 0, count: 312)
        func put(_ value: UInt64, _ offset: Int, in bytes: inout [UInt8]) {
            for index in 0..<8 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
        }
        put(0x8000_0011, 224, in: &sregs)
        put(0x0010_3000, 240, in: &sregs)
        put(0x20, 248, in: &sregs)
        put(0x500, 264, in: &sregs)
        var regs = [UInt8](repeating: 0, count: 144)
        put(0xFFFF_FFFF_8100_0000, 128, in: &regs)
        let vcpu = """
            {"id":0,"blocks":{"specialRegisters":"\(Data(sregs).base64EncodedString())","registers":"\(Data(regs).base64EncodedString())"}}
            """
        let expected = [ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x0010_3000, cr4: 0x20, efer: 0x500, rip: 0xFFFF_FFFF_8100_0000)]
        // Version 2: a vcpu.N section per vCPU.
        let path = directory.path("state.snap")
        let sections = StateSections([StateSection(name: "vcpu.0", version: 1, payload: Array(vcpu.utf8))])
        try SnapshotWriter.writeFull(memory: memory, contents: SnapshotContents(configuration: StateSections(), state: sections), to: path)
        #expect(try MemoryImage.snapshot(path: path).processors == expected)
        // Version 1's JSON, as a merge of a version 1 chain carries it.
        let legacy = directory.path("legacy.snap")
        let json = StateSections([StateSection(name: StateSections.legacyMachineJSON, version: 2, payload: Array("{\"version\":2,\"vcpus\":[\(vcpu)]}".utf8))])
        try SnapshotWriter.writeFull(memory: memory, contents: SnapshotContents(configuration: StateSections(), state: json), to: legacy)
        #expect(try MemoryImage.snapshot(path: legacy).processors == expected)
    }
}

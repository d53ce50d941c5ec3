import Foundation
import GuestMemory
import Testing
import TestSupport
@testable import Inspect

/// Real QEMU 7.2 streams (a stopped `pc` VM whose RAM file holds planted bytes; a 3 GiB `q35`
/// VM) and hand-built streams for what QEMU will not produce on demand: resent pages, a ZERO
/// record after a PAGE, XBZRLE, corrupt block lists.
@Suite struct QEMUMigrationStreamTests {
    static let mebibyte: UInt64 = 1 << 20

    /// Bytes planted in the pc VM's RAM file before it was migrated: a short string, a whole
    /// page, a string crossing a page boundary, and the last bytes of RAM.
    static let plants: [(offset: UInt64, bytes: [UInt8])] = [
        (16 * mebibyte + 0x123, Array("Engram planted this in a QEMU guest".utf8)),
        (20 * mebibyte, (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }),
        (40 * mebibyte - 3, Array("XYZ123".utf8)),
        (64 * mebibyte - 8, [1, 2, 3, 4, 5, 6, 7, 8]),
    ]

    /// Streams of one pc VM: plain, then with x-ignore-shared, then with postcopy-ram advised.
    struct PCStreams {
        let directory = TemporaryDirectory()
        var plain: String { directory.path("plain.stream") }
        var ignoreShared: String { directory.path("ignore-shared.stream") }
        var postcopy: String { directory.path("postcopy.stream") }
    }

    static let pcStreams: Result<PCStreams, any Error> = Result {
        let streams = PCStreams()
        let ramFile = streams.directory.path("ram")
        _ = FileManager.default.createFile(atPath: ramFile, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: ramFile)).truncate(atOffset: 64 * mebibyte)
        let qemu = try QEMUStreamMaker(arguments: [
            "-M", "pc", "-m", "64",
            "-object", "memory-backend-file,id=mem0,size=64M,mem-path=\(ramFile),share=on", "-machine", "memory-backend=mem0",
        ])
        defer { qemu.quit() }
        // Planted after QMP answers: the machine has been reset, and with -S the CPU never ran.
        for plant in plants { try QEMUStreamMaker.plant(plant.bytes, at: plant.offset, in: ramFile) }
        try qemu.migrate(to: streams.plain)
        try qemu.resumeAndStop()
        try qemu.setCapabilities(["x-ignore-shared": true])
        try qemu.migrate(to: streams.ignoreShared)
        try qemu.resumeAndStop()
        try qemu.setCapabilities(["x-ignore-shared": false, "postcopy-ram": true])
        try qemu.migrate(to: streams.postcopy, untilActive: true)
        return streams
    }

    /// A 3 GiB q35 VM without a memory backend: its RAM block is `pc.ram`, split at 2 GiB.
    static let q35Stream: Result<(TemporaryDirectory, String), any Error> = Result {
        let directory = TemporaryDirectory()
        let path = directory.path("q35.stream")
        let qemu = try QEMUStreamMaker(arguments: ["-M", "q35", "-m", "3G"])
        defer { qemu.quit() }
        try qemu.migrate(to: path)
        return (directory, path)
    }

    // MARK: Real streams

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func pcStreamListsBlocksAndPlacesTheBackendBlockAtZero() throws {
        let image = try MemoryImage.qemuMigrationStream(path: try Self.pcStreams.get().plain)
        #expect(image.kind.contains("pc-i440fx-7.2"))
        #expect(image.processors.isEmpty)
        let names = image.regions.map(\.name)
        #expect(names.first == "mem0")
        #expect(names.contains("pc.bios") && names.contains("pc.rom") && names.contains("/rom@etc/acpi/tables"))
        let main = try image.regionIndex(named: "mem0")
        #expect(image.regions[main].sizeInBytes == 64 * Self.mebibyte)
        #expect(image.regions[main].ranges == [ImageRange(guestAddress: 0, sizeInBytes: 64 * Self.mebibyte, regionOffset: 0)])
        for (index, region) in image.regions.enumerated() where index != main { #expect(region.ranges.isEmpty, "\(region.name)") }
        let bios = try image.regionIndex(named: "pc.bios")
        #expect(image.regions[bios].sizeInBytes == 256 * 1024)
        // SeaBIOS ends with its reset vector jump (0xEA) 16 bytes before the end of the image.
        #expect(try image.read(region: bios, at: 256 * 1024 - 16, count: 1) == [0xEA])
    }

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func plantedBytesReadBackAndUntouchedPagesAreZero() throws {
        let image = try MemoryImage.qemuMigrationStream(path: try Self.pcStreams.get().plain)
        let main = try image.regionIndex(named: "mem0")
        for plant in Self.plants {
            #expect(try image.read(region: main, at: plant.offset, count: plant.bytes.count) == plant.bytes)
            #expect(try image.readPhysical(plant.offset, count: plant.bytes.count) == plant.bytes)
        }
        // The bytes around a plant, in the same page, are zero.
        #expect(try image.read(region: main, at: 16 * Self.mebibyte, count: 0x123) == [UInt8](repeating: 0, count: 0x123))
        #expect(try image.readPhysical(30 * Self.mebibyte, count: 8192) == [UInt8](repeating: 0, count: 8192))
        let region = image.regions[main]
        let untouched = try #require(region.spanIndex(of: PageIndex(30 * Self.mebibyte / 4096)))
        #expect(region.spans[untouched].file == nil)
        let planted = try #require(region.spanIndex(of: PageIndex(20 * Self.mebibyte / 4096)))
        #expect(region.spans[planted].file == 0)
        #expect(region.spans.first?.pages.lowerBound == 0 && region.spans.last?.pages.upperBound.rawValue == region.pageCount)
        #expect(throws: InspectError.self) { try image.readPhysical(64 * Self.mebibyte, count: 1) }
    }

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func q35MachineGetsTheQ35Layout() throws {
        let image = try MemoryImage.qemuMigrationStream(path: try Self.q35Stream.get().1)
        #expect(image.kind.contains("q35"))
        let main = try image.regionIndex(named: "pc.ram")
        let size: UInt64 = 3 << 30
        #expect(image.regions[main].sizeInBytes == size)
        #expect(image.regions[main].ranges == [
            ImageRange(guestAddress: 0, sizeInBytes: 2 << 30, regionOffset: 0),
            ImageRange(guestAddress: 4 << 30, sizeInBytes: 1 << 30, regionOffset: 2 << 30),
        ])
        #expect(image.regions.filter { !$0.ranges.isEmpty }.count == 1)
        #expect(try image.readPhysical(4 << 30, count: 64) == [UInt8](repeating: 0, count: 64))
        #expect(throws: InspectError.self) { try image.readPhysical(0x9000_0000, count: 1) }
    }

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func ignoreSharedAndPostcopyStreamsAreRefused() throws {
        let streams = try Self.pcStreams.get()
        let ignoreShared = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: streams.ignoreShared) }
        #expect(ignoreShared?.description.contains("x-ignore-shared") == true)
        let postcopy = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: streams.postcopy) }
        #expect(postcopy?.description.contains("postcopy") == true)
    }

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func truncatedRealStreamsAreDamaged() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: try Self.pcStreams.get().plain))
        let directory = TemporaryDirectory()
        let path = directory.path("cut.stream")
        // The RAM section is the first three quarters of this stream; every cut lands inside it.
        for cut in [0, 3, 8, 12, 20, 30, 60, 120, 190, 4096, 10_000, source.count / 4, source.count / 2] {
            try source.prefix(cut).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: InspectError.self, "cut at \(cut)") { try MemoryImage.qemuMigrationStream(path: path) }
            if cut >= 8, let error { #expect(error.description.contains("offset"), "\(error)") }
        }
    }

    @Test(.enabled(if: QEMUStreamMaker.isAvailable))
    func flippedBytesInRealStreamsAreErrorsNotCrashes() throws {
        let source = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try Self.pcStreams.get().plain)))
        let directory = TemporaryDirectory()
        let path = directory.path("flipped.stream")
        // The fixed layout: magic, version, CONFIGURATION (type, be32 length, name), then
        // START(ram): type, id, name, instance, version, then the MEM_SIZE record and its list.
        let nameLength = Int(source[9]) << 24 | Int(source[10]) << 16 | Int(source[11]) << 8 | Int(source[12])
        let start = 13 + nameLength
        #expect(source[start] == 0x01 && source[start + 6..<start + 9].elementsEqual("ram".utf8))
        let memorySizeWord = start + 1 + 4 + 1 + 3 + 4 + 4
        #expect(source[memorySizeWord + 7] == 0x04)
        let firstBlockLength = memorySizeWord + 8
        let firstBlockSize = firstBlockLength + 1 + Int(source[firstBlockLength])
        let changes: [(offset: Int, value: UInt8)] = [
            (0, 0x52), (3, 0x00), (7, 0x04), (8, 0x09), (9, 0xFF), (start, 0x04), (start, 0x09),
            (start + 5, 4), (start + 16, 5), (start + 17, 5), (memorySizeWord + 7, 0x44), (memorySizeWord + 7, 0x02),
            (memorySizeWord, 0x7F), (firstBlockLength, 0xFF), (firstBlockLength, 0), (firstBlockSize, 0x40),
        ]
        for change in changes {
            var bytes = source
            bytes[change.offset] = change.value
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(throws: InspectError.self, "byte \(change.offset) set to 0x\(String(change.value, radix: 16))") {
                try MemoryImage.qemuMigrationStream(path: path)
            }
        }
        // Random single-byte changes in the first 64 KiB: each opens or throws, never crashes.
        var random = SeededGenerator(seed: 0x5EED)
        var bytes = source
        for _ in 0..<200 {
            let offset = Int.random(in: 0..<min(65536, bytes.count), using: &random)
            bytes[offset] = UInt8.random(in: 0...255, using: &random)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            _ = try? MemoryImage.qemuMigrationStream(path: path)
            bytes[offset] = source[offset]
        }
    }

    // MARK: Hand-built streams

    @Test func laterRecordsReplaceEarlierOnesAndDeviceStateIsNotRead() throws {
        var stream = StreamWriter(machine: "pc-q35-7.2")
        stream.startRAM(blocks: [("pc.ram", 16 * 4096), ("pc.bios", 2 * 4096)])
        stream.section(.part)
        _ = stream.page("pc.ram", at: 1 * 4096, fill: 0x11)
        _ = stream.page(nil, at: 2 * 4096, fill: 0x33)
        stream.zero(nil, at: 3 * 4096)
        _ = stream.page("pc.bios", at: 4096, fill: 0xB1)
        stream.endPayload()
        stream.section(.end)
        let latest = stream.page("pc.ram", at: 1 * 4096, fill: 0x22)
        stream.zero(nil, at: 2 * 4096)
        _ = stream.page(nil, at: 3 * 4096, fill: 0x44)
        stream.endPayload()
        // Device state that is not parsed: garbage must not matter.
        stream.bytes += [0x04, 0xDE, 0xAD, 0xBE, 0xEF]
        let directory = TemporaryDirectory()
        let image = try MemoryImage.qemuMigrationStream(path: try stream.write(in: directory))
        #expect(image.kind.contains("q35"))
        #expect(image.regions.map(\.name) == ["pc.ram", "pc.bios"])
        #expect(image.regions[0].ranges == RawLayout.q35.ranges(forSize: 16 * 4096))
        #expect(image.regions[1].ranges.isEmpty)
        #expect(try image.read(region: 0, at: 4096, count: 4096) == [UInt8](repeating: 0x22, count: 4096))
        #expect(try image.read(region: 0, at: 2 * 4096, count: 4096) == [UInt8](repeating: 0, count: 4096))
        #expect(try image.read(region: 0, at: 3 * 4096, count: 4096) == [UInt8](repeating: 0x44, count: 4096))
        #expect(try image.read(region: 1, at: 4096, count: 4096) == [UInt8](repeating: 0xB1, count: 4096))
        #expect(try image.readPhysical(4096, count: 2) == [0x22, 0x22])
        let span = image.regions[0].spans[try #require(image.regions[0].spanIndex(of: 1))]
        #expect(span.file == 0 && span.fileOffset == UInt64(latest) && span.pages == 1..<2)
        #expect(image.regions[0].spans.map(\.pages) == [0..<1, 1..<2, 2..<3, 3..<4, 4..<16])
    }

    @Test func theLargestBlockIsMainWithoutPCRAM() throws {
        var stream = StreamWriter(machine: "pc-i440fx-7.2")
        stream.startRAM(blocks: [("pc.bios", 4 * 4096), ("mem0", 32 * 4096), ("vga.vram", 8 * 4096)])
        stream.section(.end)
        stream.endPayload()
        let directory = TemporaryDirectory()
        let image = try MemoryImage.qemuMigrationStream(path: try stream.write(in: directory))
        #expect(image.regions.map { $0.ranges.isEmpty } == [true, false, true])
        #expect(image.regions[1].ranges == RawLayout.pc.ranges(forSize: 32 * 4096))
        #expect(image.regions.allSatisfy { $0.spans.count == 1 && $0.spans[0].file == nil })
    }

    @Test func encodedPagesAndUnknownFlagsAreRefusedWithTheirOffset() throws {
        let directory = TemporaryDirectory()
        let cases: [(flags: UInt64, expected: String)] = [
            (0x40, "XBZRLE"), (0x40 | 0x20, "XBZRLE"), (0x100, "COMPRESS_PAGE"), (0x80, "HOOK"),
            (0x200, "MULTIFD"), (0x400, "flags 0x400"), (0x0A, "flags 0xa"), (0x01, "flags 0x1"), (0x14, "flags 0x14"),
        ]
        for (flags, expected) in cases {
            var stream = StreamWriter(machine: "pc-i440fx-7.2")
            stream.startRAM(blocks: [("pc.ram", 16 * 4096)])
            stream.section(.end)
            _ = stream.page("pc.ram", at: 0, fill: 1)
            let recordOffset = stream.bytes.count
            stream.be64(4096 | flags)
            stream.bytes += [UInt8](repeating: 0, count: 64)
            let error = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: try stream.write(in: directory)) }
            #expect(error?.description.contains(expected) == true, "\(String(describing: error))")
            #expect(error?.description.contains("offset \(recordOffset)") == true, "\(String(describing: error))")
        }
    }

    @Test func corruptBlockListsAndRecordsAreDamaged() throws {
        let directory = TemporaryDirectory()
        func expectRefused(_ containing: String, _ build: (inout StreamWriter) -> Void) {
            var stream = StreamWriter(machine: "pc-i440fx-7.2")
            build(&stream)
            let error = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: try stream.write(in: directory)) }
            #expect(error?.description.contains(containing) == true, "\(String(describing: error))")
        }
        // A block list claiming an exabyte: refused before any table is allocated.
        expectRefused("more pages") { $0.startRAM(blocks: [("pc.ram", 1 << 60)]) }
        expectRefused("more than the") { $0.startRAM(blocks: [("pc.ram", 8192)], total: 4096) }
        expectRefused("twice") { $0.startRAM(blocks: [("a", 4096), ("a", 4096)]) }
        expectRefused("only 0x10000 bytes") {
            $0.startRAM(blocks: [("pc.ram", 16 * 4096)]); $0.section(.end); _ = $0.page("pc.ram", at: 16 * 4096, fill: 1)
        }
        expectRefused("names block \"rom\"") {
            $0.startRAM(blocks: [("pc.ram", 16 * 4096)]); $0.section(.end); $0.zero("rom", at: 0)
        }
        expectRefused("no record before it named one") {
            $0.startRAM(blocks: [("pc.ram", 16 * 4096)]); $0.section(.end); $0.zero(nil, at: 0)
        }
        expectRefused("no START section") {
            $0.startRAM(blocks: [("pc.ram", 4096)]); $0.section(.end, id: 9); $0.endPayload()
        }
        expectRefused("footer") {
            $0.startRAM(blocks: [("pc.ram", 4096)]); $0.section(.end); $0.endPayload(footerID: 7)
        }
        expectRefused("unexpected") { $0.bytes.append(0x04) }
        expectRefused("without a ram section") { $0.bytes.append(0x00) }
        expectRefused("section type 0x42") { $0.bytes.append(0x42) }
        expectRefused("second RAM block list") {
            $0.startRAM(blocks: [("pc.ram", 4096)]); $0.section(.end); $0.be64(4096 | 0x04); $0.shortString("pc.ram"); $0.be64(4096)
        }
        expectRefused("command 8 at offset") { $0.bytes += [0x08, 0, 8, 0, 0] }
        expectRefused("advises postcopy") { $0.bytes += [0x08, 0, 3, 0, 16] + [UInt8](repeating: 0, count: 16) }
        expectRefused("does not read") {
            $0.section(.start); $0.shortString("block"); $0.be32(0); $0.be32(1)
        }
    }

    /// The page budget counts the stream's data, not its size: a sparse file's hole holds no
    /// records, so a 100 GiB file with a few bytes of data cannot declare 40 GiB of pages (their
    /// tables, 80 MiB here, would be allocated before any record is read).
    @Test func aSparseStreamsHoleBuysNoPages() throws {
        let directory = TemporaryDirectory()
        var stream = StreamWriter(machine: "pc-i440fx-7.2")
        stream.startRAM(blocks: [("pc.ram", 40 << 30)])
        let path = try stream.write(in: directory)
        #expect(truncate(path, 100 << 30) == 0)
        let error = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: path) }
        #expect(error?.description.contains("more pages than a stream of") == true, "\(String(describing: error))")
    }

    @Test func returnPathAndPingCommandsAreSkipped() throws {
        var stream = StreamWriter(machine: "pc-i440fx-7.2")
        stream.bytes += [0x08, 0, 1, 0, 0, 0x08, 0, 2, 0, 4, 0, 0, 0, 1]
        stream.startRAM(blocks: [("pc.ram", 4 * 4096)])
        stream.section(.end)
        _ = stream.page("pc.ram", at: 3 * 4096, fill: 0x5A)
        stream.endPayload()
        let directory = TemporaryDirectory()
        let image = try MemoryImage.qemuMigrationStream(path: try stream.write(in: directory))
        #expect(try image.readPhysical(3 * 4096 + 100, count: 3) == [0x5A, 0x5A, 0x5A])
    }

    @Test func everyTruncationOfAHandBuiltStreamIsDamaged() throws {
        var stream = StreamWriter(machine: "pc-i440fx-7.2")
        stream.startRAM(blocks: [("pc.ram", 8 * 4096), ("pc.bios", 4096)])
        stream.section(.part)
        _ = stream.page("pc.ram", at: 0, fill: 9)
        stream.zero(nil, at: 4096)
        stream.zero("pc.bios", at: 0)
        stream.endPayload()
        stream.section(.end)
        _ = stream.page("pc.ram", at: 2 * 4096, fill: 8)
        stream.endPayload()
        let directory = TemporaryDirectory()
        let whole = try stream.write(in: directory)
        #expect(throws: Never.self) { try MemoryImage.qemuMigrationStream(path: whole) }
        let path = directory.path("cut.stream")
        // Cut anywhere before the final footer (a cut just before it leaves all the RAM intact).
        let cuts = Array(0..<300) + Array(stride(from: 300, to: stream.bytes.count - 5, by: 61)) + [stream.bytes.count - 6]
        for cut in cuts {
            try Data(stream.bytes.prefix(cut)).write(to: URL(fileURLWithPath: path))
            #expect(throws: InspectError.self, "cut at \(cut)") { try MemoryImage.qemuMigrationStream(path: path) }
        }
    }

    @Test func wrongMagicAndVersionAreNotThisFormat() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("other")
        for bytes: [UInt8] in [[], [0x51, 0x45, 0x56], Array("QEVM\0\0\0\u{2}".utf8), Array("ELF!\0\0\0\u{3}".utf8)] {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: InspectError.self) { try MemoryImage.qemuMigrationStream(path: path) }
            if case .unknownFormat = error {} else { Issue.record("\(bytes): \(String(describing: error))") }
        }
    }
}

/// Builds a legacy migration stream byte by byte, as QEMU 7.2 writes one.
private struct StreamWriter {
    enum Section: UInt8 { case start = 1, part = 2, end = 3 }
    var bytes: [UInt8] = []
    let ramID: UInt32 = 2

    init(machine: String) {
        be32(0x5145_564D)
        be32(3)
        bytes.append(0x07)
        be32(UInt32(machine.utf8.count))
        bytes += Array(machine.utf8)
    }

    mutating func be32(_ value: UInt32) { for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) } }
    mutating func be64(_ value: UInt64) { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) } }
    mutating func shortString(_ text: String) { bytes.append(UInt8(text.utf8.count)); bytes += Array(text.utf8) }

    /// START(ram) with the MEM_SIZE block list and the payload's EOS and footer.
    mutating func startRAM(blocks: [(String, UInt64)], total: UInt64? = nil) {
        section(.start)
        shortString("ram")
        be32(0)
        be32(4)
        be64((total ?? blocks.reduce(0) { $0 + $1.1 }) | 0x04)
        for (name, size) in blocks { shortString(name); be64(size) }
        endPayload()
    }

    mutating func section(_ type: Section, id: UInt32? = nil) {
        bytes.append(type.rawValue)
        be32(id ?? ramID)
    }

    /// A PAGE record filled with `fill`; returns the file offset of its data.
    mutating func page(_ block: String?, at offset: UInt64, fill: UInt8) -> Int {
        be64(offset | 0x08 | (block == nil ? 0x20 : 0))
        if let block { shortString(block) }
        let data = bytes.count
        bytes += [UInt8](repeating: fill, count: 4096)
        return data
    }

    mutating func zero(_ block: String?, at offset: UInt64) {
        be64(offset | 0x02 | (block == nil ? 0x20 : 0))
        if let block { shortString(block) }
        bytes.append(0)
    }

    /// EOS and the section footer.
    mutating func endPayload(footerID: UInt32? = nil) {
        be64(0x10)
        bytes.append(0x7E)
        be32(footerID ?? ramID)
    }

    func write(in directory: TemporaryDirectory) throws -> String {
        let path = directory.path("hand-built.stream")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// A small deterministic generator (SplitMix64), so a failing random flip can be replayed.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

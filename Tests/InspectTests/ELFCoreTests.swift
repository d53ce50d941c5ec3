import Foundation
import Inspect
import Testing
import TestSupport

/// Little-endian helpers for checking and damaging ELF files by hand.
private extension Array where Element == UInt8 {
    func word<Value: FixedWidthInteger>(_ type: Value.Type, at offset: Int) -> Value {
        (0..<Value.bitWidth / 8).reduce(Value(0)) { $0 | Value(self[offset + $1]) << (8 * $1) }
    }

    mutating func put<Value: FixedWidthInteger>(_ value: Value, at offset: Int) {
        for index in 0..<Value.bitWidth / 8 { self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
}

/// Runs a tool with its output (stdout and stderr) in `output`; nil if it could not start.
/// posix_spawn and waitpid on this one child, not Foundation's Process (see ChildProcess).
private func runTool(_ arguments: [String], output: String) -> Int32? {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    let argv = arguments.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ) == 0 else { return nil }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        if errno != EINTR { return nil }
    }
    return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
}

/// Whether volatility3 imports here (it is optional; its test is skipped without it).
private let volatilityAvailable: Bool = {
    let directory = TemporaryDirectory()
    return runTool(["python3", "-c", "import volatility3"], output: directory.path("probe")) == 0
}()

@Suite("ELF core export and input")
struct ELFCoreTests {
    let directory = TemporaryDirectory()
    static let fourGiB: UInt64 = 1 << 32
    static let ramSize: UInt64 = 8 << 20
    static let romSize: UInt64 = 64 << 10

    /// Known bytes at guest-physical addresses (through the ram file, the rom file, and the
    /// ram's second placement at 4 GiB).
    static let planted: [(address: UInt64, bytes: [UInt8])] = [
        (0x1234, Array("low memory".utf8)),
        (0x10_0000, Array(repeating: 0xAB, count: 8192)),
        (0x5F_FFF8, Array("crosses 6 MiB into the rom".utf8)),
        (0x60_8000, Array("in the rom".utf8)),
        (fourGiB + 0x1_0000, Array("above 4 GiB".utf8)),
        (fourGiB + 0x1F_F000, Array(repeating: 0x5A, count: 4096)),
    ]

    static let processors = [
        ProcessorState(id: 0, cr0: 0x8005_0033, cr3: 0x1234_5000, cr4: 0x3506F0, efer: 0xD01, rip: 0xFFFF_FFFF_8100_0000),
        ProcessorState(id: 1, cr0: 0x8005_0033, cr3: 0x0ABC_D000, cr4: 0x3506F0, efer: 0xD01, rip: 0xFFFF_FFFF_8100_1234),
    ]

    /// An image of two files: an 8 MiB sparse "ram" placed at 0 (6 MiB) and 4 GiB (2 MiB), and a
    /// 64 KiB "rom" right after the low ram, so the low ram and the rom make one load.
    func makeImage(processors: [ProcessorState] = Self.processors) throws -> MemoryImage {
        let ramPath = directory.path("ram-\(UUID().uuidString.prefix(6))")
        let romPath = directory.path("rom-\(UUID().uuidString.prefix(6))")
        var ram = [UInt8](repeating: 0, count: Int(Self.ramSize))
        var rom = [UInt8](repeating: 0, count: Int(Self.romSize))
        for (address, bytes) in Self.planted {
            for (index, byte) in bytes.enumerated() {
                let guest = address + UInt64(index)
                if guest < 6 << 20 { ram[Int(guest)] = byte }
                else if guest < (6 << 20) + Self.romSize { rom[Int(guest - (6 << 20))] = byte }
                else { ram[Int(guest - Self.fourGiB + (6 << 20))] = byte }
            }
        }
        try writeSparse(ram, to: ramPath)
        try writeSparse(rom, to: romPath)
        let ramFile = try ImageFile(path: ramPath)
        let romFile = try ImageFile(path: romPath)
        let ramRegion = MemoryImage.regionFromFile(ramFile, index: 0, name: "ram", ranges: [
            ImageRange(guestAddress: 0, sizeInBytes: 6 << 20, regionOffset: 0),
            ImageRange(guestAddress: Self.fourGiB, sizeInBytes: 2 << 20, regionOffset: 6 << 20),
        ])
        let romRegion = MemoryImage.regionFromFile(romFile, index: 1, name: "rom", ranges: [
            ImageRange(guestAddress: 6 << 20, sizeInBytes: Self.romSize, regionOffset: 0),
        ])
        return MemoryImage(kind: "test", source: ramPath, files: [ramFile, romFile], regions: [ramRegion, romRegion], processors: processors)
    }

    /// Writes only the non-zero pages of `bytes`, plus one explicit zero page (stored, so the
    /// exporter must notice it reads as zeros), leaving the rest a hole.
    private func writeSparse(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(bytes.count)) == 0)
        for page in stride(from: 0, to: bytes.count, by: 4096) {
            let slice = bytes[page..<page + 4096]
            guard page == 4096 || slice.contains(where: { $0 != 0 }) else { continue }
            let written = slice.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(page)) }
            #expect(written == 4096)
        }
    }

    private func fileStatus(_ path: String) -> stat {
        var status = stat()
        #expect(stat(path, &status) == 0)
        return status
    }

    @Test("export then input: loads merge neighbours, bytes and registers survive")
    func roundTrip() throws {
        let image = try makeImage()
        let path = directory.path("core.elf")
        let summary = try ELFCoreWriter.write(image, to: path)
        #expect(summary.loads.map(\.guestAddress) == [0, Self.fourGiB])
        #expect(summary.loads.map(\.sizeInBytes) == [(6 << 20) + Self.romSize, 2 << 20])
        #expect(summary.loads.allSatisfy { $0.fileOffset % 4096 == 0 })
        #expect(summary.notes == 4)
        // Non-zero pages only: 0x1000 (0x1234), two 0xAB pages, the pages either side of 6 MiB,
        // the rom page, and two pages above 4 GiB; the stored zero page at 0x1000 of the ram
        // file holds "low memory" here, so nothing else.
        #expect(summary.writtenBytes == 8 * 4096)

        let core = try MemoryImage.elfCore(path: path)
        #expect(core.regions.map(\.name) == ["load0", "load1"])
        #expect(core.regions.map(\.ranges) == [
            [ImageRange(guestAddress: 0, sizeInBytes: (6 << 20) + Self.romSize, regionOffset: 0)],
            [ImageRange(guestAddress: Self.fourGiB, sizeInBytes: 2 << 20, regionOffset: 0)],
        ])
        for (address, bytes) in Self.planted {
            #expect(try core.readPhysical(address, count: bytes.count) == bytes)
        }
        for load in summary.loads {
            var offset: UInt64 = 0
            while offset < load.sizeInBytes {
                let count = Int(min(1 << 20, load.sizeInBytes - offset))
                #expect(try core.readPhysical(load.guestAddress + offset, count: count) == image.readPhysical(load.guestAddress + offset, count: count))
                offset += UInt64(count)
            }
        }
        #expect(core.processors.map(\.cr3) == Self.processors.map(\.cr3))
        #expect(core.processors.map(\.rip) == Self.processors.map(\.rip))
        #expect(core.processors.map(\.cr0) == Self.processors.map(\.cr0))
        #expect(core.processors.map { PagingMode(processor: $0) } == [.fourLevel, .fourLevel])
        // Zero pages of the core are holes, so the input sees them as zero spans.
        #expect(core.regions[0].spans.contains { $0.file == nil })
    }

    @Test("a guest outside long mode is written as QEMU does (EM_386) and read back as PAE")
    func paeGuest() throws {
        let pae = [ProcessorState(id: 0, cr0: 0x8000_0011, cr3: 0x6020, cr4: 0x20, efer: 0, rip: 0xC010_0000)]
        let path = directory.path("pae.elf")
        _ = try ELFCoreWriter.write(try makeImage(processors: pae), to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)).prefix(64))
        #expect(bytes.word(UInt16.self, at: 18) == 3)
        let core = try MemoryImage.elfCore(path: path)
        #expect(core.processors.count == 1)
        #expect(PagingMode(processor: core.processors[0]) == .pae)
        #expect(core.processors[0].cr3 == 0x6020)
    }

    @Test("the core is mode 0600 and sparse")
    func sparseAndPrivate() throws {
        let path = directory.path("sparse.elf")
        let summary = try ELFCoreWriter.write(try makeImage(), to: path)
        let status = fileStatus(path)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(UInt64(status.st_size) == summary.sizeInBytes)
        #expect(summary.sizeInBytes > (8 << 20))
        // 8 data pages and a header page; leave room for file-system allocation granularity.
        #expect(Int(status.st_blocks) * 512 < 256 << 10, "\(status.st_blocks) blocks")
        // An existing core is replaced whole, never written into.
        _ = try ELFCoreWriter.write(try makeImage(), to: path)
        #expect(fileStatus(path).st_mode & 0o777 == 0o600)
    }

    @Test("readelf parses the program headers and notes")
    func readelfParses() throws {
        let path = directory.path("readelf.elf")
        _ = try ELFCoreWriter.write(try makeImage(), to: path)
        let output = directory.path("readelf.txt")
        let status = runTool(["readelf", "-hlnW", path], output: output)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(text)")
        #expect(text.contains("CORE (Core file)"))
        #expect(text.contains("Advanced Micro Devices X86-64"))
        #expect(!text.lowercased().contains("warning"), "\(text)")
        let loads = text.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("LOAD") }
        #expect(loads.count == 2, "\(text)")
        // p_vaddr and p_paddr are both the guest-physical address, as QEMU writes them.
        #expect(loads.last?.contains("0x0000000100000000 0x0000000100000000 0x200000 0x200000") == true, "\(text)")
        #expect(text.contains("NOTE"))
        #expect(text.components(separatedBy: "NT_PRSTATUS").count - 1 == 2, "\(text)")
        #expect(text.components(separatedBy: "QEMU").count - 1 == 2, "\(text)")
        #expect(text.contains("0x000001b8"), "\(text)")
    }

    @Test("volatility3 finds a Linux banner in the core", .enabled(if: volatilityAvailable, "volatility3 is not installed"))
    func volatilityBanner() throws {
        let banner = "Linux version 6.1.0-test (engram@test) (gcc) #1 SMP"
        let ramPath = directory.path("banner-ram")
        var ram = [UInt8](repeating: 0, count: 4 << 20)
        ram.replaceSubrange(0x12_3450..<0x12_3450 + banner.utf8.count, with: Array(banner.utf8))
        #expect(FileManager.default.createFile(atPath: ramPath, contents: Data(ram)))
        let image = try MemoryImage.raw(path: ramPath, layout: .flat)
        let path = directory.path("banner.elf")
        _ = try ELFCoreWriter.write(image, to: path)
        let output = directory.path("vol.txt")
        let script = "import sys; sys.argv[0] = 'vol'; from volatility3 import cli; cli.main()"
        let status = runTool(["python3", "-c", script, "-q", "-f", path, "banners.Banners"], output: output)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(text)")
        #expect(text.contains(banner), "\(text)")
    }

    // MARK: Damaged input

    /// A small valid core to damage: 1 MiB of RAM with one note pair.
    private func smallCore() throws -> (path: String, bytes: [UInt8]) {
        let ramPath = directory.path("small-ram-\(UUID().uuidString.prefix(6))")
        var ram = [UInt8](repeating: 0, count: 1 << 20)
        ram.replaceSubrange(0x2000..<0x2005, with: Array("hello".utf8))
        #expect(FileManager.default.createFile(atPath: ramPath, contents: Data(ram)))
        let image = MemoryImage(kind: "test", source: ramPath, files: [try ImageFile(path: ramPath)],
                                regions: try MemoryImage.raw(path: ramPath, layout: .flat).regions, processors: [Self.processors[0]])
        let path = directory.path("small-\(UUID().uuidString.prefix(6)).elf")
        _ = try ELFCoreWriter.write(image, to: path)
        return (path, try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))))
    }

    /// Writes `bytes` as a new file and returns the error opening it as an ELF core.
    private func refusal(_ bytes: [UInt8], name: String) throws -> InspectError? {
        let path = directory.path(name)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        do {
            _ = try MemoryImage.elfCore(path: path)
            return nil
        } catch {
            #expect(error.description.contains(path), "\(error)")
            return error
        }
    }

    private func expectDamaged(_ error: InspectError?, mentioning words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .damaged(_, let reason) = error else {
            Issue.record("expected damage, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        for word in words { #expect(reason.contains(word), "\(reason)", sourceLocation: sourceLocation) }
    }

    @Test("the small core itself reads")
    func smallCoreReads() throws {
        let (path, _) = try smallCore()
        let core = try MemoryImage.elfCore(path: path)
        #expect(try core.readPhysical(0x2000, count: 5) == Array("hello".utf8))
        #expect(core.processors.first?.cr3 == Self.processors[0].cr3)
    }

    @Test("damaged headers, tables, loads and notes are refused naming the field")
    func damaged() throws {
        let (_, good) = try smallCore()
        let phoff = Int(good.word(UInt64.self, at: 32))
        let note = phoff, load = phoff + 56
        let noteOffset = Int(good.word(UInt64.self, at: note + 8))

        expectDamaged(try refusal(Array(good.prefix(40)), name: "short-header"), mentioning: ["ELF header"])

        var badTable = good
        badTable.put(UInt64(good.count - 10), at: 32)
        expectDamaged(try refusal(badTable, name: "phoff"), mentioning: ["e_phoff", "past the end"])

        var manyHeaders = good
        manyHeaders.put(UInt16(0xFFFE), at: 56)
        expectDamaged(try refusal(manyHeaders, name: "phnum"), mentioning: ["e_phnum"])

        var smallEntries = good
        smallEntries.put(UInt16(32), at: 54)
        expectDamaged(try refusal(smallEntries, name: "phentsize"), mentioning: ["e_phentsize"])

        var noHeaders = good
        noHeaders.put(UInt16(0), at: 56)
        expectDamaged(try refusal(noHeaders, name: "no-headers"), mentioning: ["e_phnum"])

        var farLoad = good
        farLoad.put(UInt64(good.count), at: load + 8)
        expectDamaged(try refusal(farLoad, name: "load-offset"), mentioning: ["PT_LOAD", "p_offset", "p_filesz"])

        var wrappingLoad = good
        wrappingLoad.put(UInt64.max - 10, at: load + 8)
        expectDamaged(try refusal(wrappingLoad, name: "load-wrap"), mentioning: ["p_offset"])

        var fileBeyondMemory = good
        fileBeyondMemory.put(UInt64(4096), at: load + 40)
        expectDamaged(try refusal(fileBeyondMemory, name: "memsz"), mentioning: ["p_memsz"])

        // 2^64 - 1 bytes at address 0 does not wrap the address, but rounding it to pages did (a trap).
        var hugeLoad = good
        hugeLoad.put(UInt64(0), at: load + 24)
        hugeLoad.put(UInt64.max, at: load + 40)
        expectDamaged(try refusal(hugeLoad, name: "memsz-huge"), mentioning: ["p_memsz", "52-bit physical address space"])

        var hugeNote = good
        hugeNote.put(UInt32(0x7FFF_FFFF), at: noteOffset + 4)
        expectDamaged(try refusal(hugeNote, name: "descsz"), mentioning: ["n_descsz", "note 0"])

        var longName = good
        longName.put(UInt32(0x100_0000), at: noteOffset)
        expectDamaged(try refusal(longName, name: "namesz"), mentioning: ["n_namesz"])

        var bigNoteSegment = good
        bigNoteSegment.put(UInt64(1) << 40, at: note + 32)
        expectDamaged(try refusal(bigNoteSegment, name: "note-size"), mentioning: ["PT_NOTE", "p_filesz"])

        // The QEMU note is the second: shrink its descriptor below QEMUCPUState.
        let prstatusLength = 12 + 8 + Int(good.word(UInt32.self, at: noteOffset + 4))
        var shortState = good
        shortState.put(UInt32(0x100), at: noteOffset + prstatusLength + 4)
        shortState.put(UInt64(prstatusLength + 12 + 8 + 0x100), at: note + 32)
        expectDamaged(try refusal(shortState, name: "qemu-state"), mentioning: ["QEMU note", "QEMUCPUState"])

        // A core cut short in its memory.
        expectDamaged(try refusal(Array(good.prefix(good.count - 100)), name: "truncated"), mentioning: ["PT_LOAD", "past the end"])
    }

    @Test("files that are not x86-64 cores are refused as unknown formats")
    func notACore() throws {
        let (_, good) = try smallCore()
        var executable = good
        executable.put(UInt16(2), at: 16)
        guard case .unknownFormat(_, let reason) = try refusal(executable, name: "exec") else { Issue.record("not refused"); return }
        #expect(reason.contains("e_type"))
        var arm = good
        arm.put(UInt16(183), at: 18)
        guard case .unknownFormat = try refusal(arm, name: "arm") else { Issue.record("not refused"); return }
        var elf32 = good
        elf32[4] = 1
        guard case .unknownFormat = try refusal(elf32, name: "elf32") else { Issue.record("not refused"); return }
        guard case .unknownFormat = try refusal(Array("not an elf file at all, just text".utf8), name: "text") else {
            Issue.record("not refused"); return
        }
    }

    @Test("a QEMU-style core with loads packed right after the notes (not page aligned) reads")
    func unalignedLoads() throws {
        // Header, PT_NOTE (empty) and two PT_LOADs, then the loads' bytes back to back at 232.
        var bytes = [UInt8](repeating: 0, count: 64 + 3 * 56)
        bytes.replaceSubrange(0..<8, with: [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0])
        bytes.put(UInt16(4), at: 16)
        bytes.put(UInt16(62), at: 18)
        bytes.put(UInt32(1), at: 20)
        bytes.put(UInt64(64), at: 32)
        bytes.put(UInt16(64), at: 52)
        bytes.put(UInt16(56), at: 54)
        bytes.put(UInt16(3), at: 56)
        bytes.put(UInt32(4), at: 64)
        let first = [UInt8]((0..<3 * 4096).map { UInt8(truncatingIfNeeded: $0 % 251 + 1) })
        let second = [UInt8]((0..<2 * 4096).map { UInt8(truncatingIfNeeded: $0 % 13 + 100) })
        let loads: [(paddr: UInt64, data: [UInt8], memsz: UInt64)] = [(0x10_0000, first, 3 * 4096), (0xFFFC_0000, second, 4 * 4096)]
        var offset = bytes.count
        for (index, load) in loads.enumerated() {
            let header = 64 + 56 * (index + 1)
            bytes.put(UInt32(1), at: header)
            bytes.put(UInt64(offset), at: header + 8)
            bytes.put(load.paddr, at: header + 16)
            bytes.put(load.paddr, at: header + 24)
            bytes.put(UInt64(load.data.count), at: header + 32)
            bytes.put(load.memsz, at: header + 40)
            offset += load.data.count
        }
        bytes += first + second
        let path = directory.path("qemu-style.elf")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let core = try MemoryImage.elfCore(path: path)
        #expect(core.processors.isEmpty)
        #expect(try core.readPhysical(0x10_0000, count: first.count) == first)
        #expect(try core.readPhysical(0xFFFC_0000, count: second.count) == second)
        // p_memsz beyond p_filesz reads as zeros.
        #expect(try core.readPhysical(0xFFFC_0000 + 2 * 4096, count: 2 * 4096) == [UInt8](repeating: 0, count: 2 * 4096))
    }
}

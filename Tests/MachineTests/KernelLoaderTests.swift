import Foundation
import GuestMemory
@testable import Machine
import Testing
import TestSupport

@Suite struct KernelLoaderTests {
    let directory = TemporaryDirectory()

    func memory() throws -> GuestMemoryMap {
        let region = try GuestRegion(name: "ram", sizeInBytes: 32 << 20, backing: .memfd)
        return GuestMemoryMap(regions: [region], mappings: RAMLayout.mappings(for: region))
    }

    /// A minimal ELF64 with one PT_LOAD at 1 MiB and a Xen PVH note.
    static func elf(entry: UInt32 = 0x100_010, withNote: Bool = true) -> [UInt8] {
        var file = ByteWriter(count: 0x200)
        file.put([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], at: 0)
        file.put(UInt16(2), at: 16)
        file.put(UInt16(62), at: 18)
        file.put(UInt64(64), at: 32)                 // e_phoff
        file.put(UInt16(56), at: 54)                 // e_phentsize
        file.put(UInt16(withNote ? 2 : 1), at: 56)   // e_phnum
        // PT_LOAD: 16 bytes at file 0x100 → 0x100000, 64 bytes in memory
        file.put(UInt32(1), at: 64)
        file.put(UInt64(0x100), at: 72)
        file.put(UInt64(0x100000), at: 88)
        file.put(UInt64(16), at: 96)
        file.put(UInt64(64), at: 104)
        file.put([UInt8](repeating: 0x90, count: 16), at: 0x100)
        if withNote {
            file.put(UInt32(4), at: 120)             // PT_NOTE at 0x180, 20 bytes
            file.put(UInt64(0x180), at: 128)
            file.put(UInt64(20), at: 152)
            file.put(UInt64(20), at: 160)
            file.put(UInt32(4), at: 0x180)
            file.put(UInt32(4), at: 0x184)
            file.put(UInt32(18), at: 0x188)
            file.put(Array("Xen\0".utf8), at: 0x18c)
            file.put(entry, at: 0x190)
        }
        return file.bytes
    }

    @Test func loadsSegmentsAndFindsThePVHEntry() throws {
        let memory = try memory()
        try memory.write([UInt8](repeating: 0xee, count: 64), at: GuestAddress(0x100000))
        let entry = try ELFKernelLoader.load(Self.elf(), path: "k", into: memory)
        #expect(entry == .pvh(address: 0x100_010))
        #expect(try memory.read(count: 16, at: GuestAddress(0x100000)) == [UInt8](repeating: 0x90, count: 16))
        #expect(try memory.read(count: 48, at: GuestAddress(0x100010)) == [UInt8](repeating: 0, count: 48))  // bss zeroed
    }

    @Test func refusesELFWithoutPVHNote() throws {
        #expect(throws: MachineError.self) { try ELFKernelLoader.load(Self.elf(withNote: false), path: "k", into: try memory()) }
    }

    @Test func refusesEveryTruncationOfTheELF() throws {
        let memory = try memory()
        let elf = Self.elf()
        for length in stride(from: 0, to: 0x194, by: 7) {
            #expect(throws: MachineError.self) { try ELFKernelLoader.load(Array(elf[..<length]), path: "k", into: memory) }
        }
    }

    @Test func refusesFilesThatAreNoKernel() throws {
        let path = directory.path("junk")
        _ = FileManager.default.createFile(atPath: path, contents: Data("not a kernel at all".utf8))
        #expect(throws: MachineError.self) { try KernelImage.load(path: path, into: try memory()) }
        #expect(throws: MachineError.self) { try KernelImage.load(path: directory.path("absent"), into: try memory()) }
    }

    @Test func bzImageHeaderChecks() {
        var image = ByteWriter(count: 0x1000)
        image.put(UInt8(0x6a), at: 0x201)            // header runs to 0x26c
        image.put(LinuxSetupHeader.magic, at: 0x202)
        image.put(UInt16(0x0206), at: 0x206)
        #expect(throws: BzImageError.self) { try LinuxSetupHeader(image.bytes) }  // too old
        image.put(UInt16(0x020f), at: 0x206)
        image.put(UInt8(1), at: 0x211)
        #expect(throws: BzImageError.self) { try LinuxSetupHeader(image.bytes) }  // no 64-bit entry
        image.put(UInt16(1), at: 0x236)
        image.put(UInt8(0), at: 0x1f1)
        let header = try? LinuxSetupHeader(image.bytes)
        #expect(header?.setupSectors == 4)
        #expect(header?.headerBytes.count == 0x26c - 0x1f1)
    }
}


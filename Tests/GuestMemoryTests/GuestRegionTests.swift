import Foundation
import GuestMemory
import Testing
import TestSupport

@Suite struct GuestRegionTests {
    let directory = TemporaryDirectory()

    @Test func memfdRegionIsVisibleThroughItsDescriptor() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        try region.write(Array("hello".utf8), at: RegionOffset(4096))
        let fd = try #require(region.fileDescriptor)
        let other = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/fd/\(fd)"))
        try other.seek(toOffset: 4096)
        #expect(try other.read(upToCount: 5) == Data("hello".utf8))
        #expect(region.path == nil)
        #expect(region.backing.kindName == "memfd")
    }

    @Test func userFileIsMappedSharedAndSeesGuestWrites() throws {
        let path = directory.path("ram.img")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingTo: URL(fileURLWithPath: path)).truncate(atOffset: 2 << 20)
        let region = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .file(path: path))
        try region.write(Array("tag-123".utf8), at: RegionOffset(0x1_0000))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes[0x1_0000..<0x1_0007] == Data("tag-123".utf8))
        #expect(region.path == path)
    }

    @Test func wrongSizedFileIsRefusedWithBothSizes() throws {
        let path = directory.path("small.img")
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 4096))
        #expect(throws: GuestMemoryError.fileSizeMismatch(path: path, actual: 4096, expected: 1 << 20)) {
            try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .file(path: path))
        }
        let message = GuestMemoryError.fileSizeMismatch(path: path, actual: 4096, expected: 1 << 20).description
        #expect(message.contains(path) && message.contains("4096") && message.contains("1048576"))
    }

    @Test func missingFileIsRefused() throws {
        let path = directory.path("absent.img")
        #expect(throws: GuestMemoryError.fileMissing(path: path)) {
            try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .file(path: path))
        }
    }

    @Test func readOnlyFileIsRefused() throws {
        let path = directory.path("ro.img")
        _ = FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20), attributes: [.posixPermissions: 0o400])
        // root ignores file modes, so make the file immutable to the open instead when running as root.
        let readOnly = getuid() == 0 ? makeImmutable(path) : true
        try #require(readOnly, "cannot make a read-only file here")
        defer { if getuid() == 0 { _ = runTool("/usr/bin/chattr", ["-i", path]) } }
        do {
            _ = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .file(path: path))
            Issue.record("a read-only RAM file was accepted")
        } catch {
            guard case .fileNotWritable(let failedPath, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(failedPath == path)
        }
    }

    @Test func sharedFileIsCreatedPrivateAndNotOverwritten() throws {
        let path = directory.path("vm.ram")
        do {
            let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .sharedFile(path: path, overwrite: false))
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? Int) == 0o600)
            #expect((attributes[.size] as? Int) == 1 << 20)
            #expect(region.path == path)
        }
        #expect(throws: GuestMemoryError.fileExists(path: path)) {
            try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .sharedFile(path: path, overwrite: false))
        }
        let replaced = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .sharedFile(path: path, overwrite: true))
        #expect(replaced.sizeInBytes == 2 << 20)
    }

    @Test func anonymousRegionHasNoDescriptor() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .anonymous)
        #expect(region.fileDescriptor == nil)
        try region.write([1, 2, 3], at: RegionOffset(10))
        #expect(try region.read(count: 3, at: RegionOffset(10)) == [1, 2, 3])
    }

    @Test func hugetlbfsNeedsADirectory() throws {
        #expect(throws: GuestMemoryError.notADirectory(path: directory.path("nope"))) {
            try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .hugetlbfs(directory: directory.path("nope")))
        }
    }

    @Test func sizesMustBeWholePages() {
        #expect(throws: GuestMemoryError.self) { try GuestRegion(name: "ram", sizeInBytes: 1000, backing: .memfd) }
        #expect(throws: GuestMemoryError.self) { try GuestRegion(name: "ram", sizeInBytes: 0, backing: .memfd) }
    }

    @Test func accessesOutsideTheRegionAreRefused() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        #expect(throws: GuestMemoryError.self) { try region.write([1, 2], at: RegionOffset((1 << 20) - 1)) }
        #expect(throws: GuestMemoryError.self) { try region.read(count: 8, at: RegionOffset(UInt64.max - 2)) }
    }

    private func makeImmutable(_ path: String) -> Bool { runTool("/usr/bin/chattr", ["+i", path]) == 0 }

    private func runTool(_ tool: String, _ arguments: [String]) -> Int32 {
        guard let process = try? Process.run(URL(fileURLWithPath: tool), arguments: arguments) else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Giving pages back to the host: each backing reads zeros afterwards and holds less.
@Suite struct GuestRegionDiscardTests {
    static func allocated(_ fd: CInt) -> Int {
        var info = stat()
        return fstat(fd, &info) == 0 ? Int(info.st_blocks) * 512 : -1
    }

    @Test func aMemfdGetsAHole() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
        try region.write([UInt8](repeating: 7, count: 2 << 20), at: RegionOffset(1 << 20))
        let fd = try #require(region.fileDescriptor)
        let before = Self.allocated(fd)
        #expect(try region.discard((1 << 20)..<(2 << 20)) == 1 << 20)
        #expect(try region.read(count: 4, at: RegionOffset(1 << 20)) == [0, 0, 0, 0])
        #expect(try region.read(count: 1, at: RegionOffset(2 << 20)) == [7])
        #expect(before - Self.allocated(fd) >= 960 << 10, "about the MiB given back (shmem counts blocks loosely)")
    }

    @Test func anonymousMemoryIsDropped() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .anonymous)
        try region.write([9, 9], at: RegionOffset(8192))
        try region.discard(8192..<12288)
        #expect(try region.read(count: 2, at: RegionOffset(8192)) == [0, 0])
    }

    @Test func aCopyOnWriteMappingReadsZerosNotTheSnapshot() throws {
        let path = "/tmp/engram-discard-\(getpid()).bin"
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        defer { close(fd) }
        let data = [UInt8](repeating: 0x5A, count: 64 << 10)
        #expect(data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == data.count)
        let region = try GuestRegion(name: "ram", sizeInBytes: 64 << 10, copyOnWriteOf: fd, at: 0, path: path)
        try region.write([1], at: RegionOffset(4096))  // a private page
        try region.discard(0..<16384)
        #expect(try region.read(count: 1, at: RegionOffset(0)) == [0], "not the file's byte")
        #expect(try region.read(count: 1, at: RegionOffset(4096)) == [0])
        #expect(try region.read(count: 1, at: RegionOffset(16384)) == [0x5A])
        try region.write([3], at: RegionOffset(0))
        #expect(try region.read(count: 1, at: RegionOffset(0)) == [3], "still writable")
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, 0) == 1 && byte == 0x5A, "the snapshot file is untouched")
    }

    @Test func unalignedOrOutsideRangesAreRefused() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        #expect(throws: GuestMemoryError.self) { try region.discard(100..<4096) }
        #expect(throws: GuestMemoryError.self) { try region.discard(0..<(2 << 20)) }
    }

    @Test func theReclaimerTakesGuestAddressesAndRefusesWhatIsNotRAM() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        let memory = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0x10_0000), sizeInBytes: 1 << 20, region: region, regionOffset: RegionOffset(0)),
        ])
        try region.write([1, 1], at: RegionOffset(8192))
        // An unaligned range gives back only the whole pages inside it.
        #expect(try MemoryReclaimer().discard(GuestAddress(0x10_0000 + 100), length: 3 * 4096, in: memory) == 2 * 4096)
        #expect(try region.read(count: 1, at: RegionOffset(8192)) == [0])
        #expect(throws: GuestMemoryError.self) { try MemoryReclaimer().discard(GuestAddress(0), length: 4096, in: memory) }
    }
}

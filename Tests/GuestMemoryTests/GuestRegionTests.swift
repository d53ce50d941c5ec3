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

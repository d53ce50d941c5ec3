import Glibc
import Testing
import TestSupport
@testable import LinuxSystem

/// File status, locks and read-only mappings.
@Suite struct FileTests {
    let directory = TemporaryDirectory()

    @Test func statusTellsKindsAndIdentity() throws {
        let path = directory.path("file")
        try AtomicFile.write([1, 2, 3], to: path)
        let status = try #require(FileStatus(path: path))
        #expect(status.kind == .regular && status.sizeInBytes == 3 && status.permissions == 0o600)
        #expect(FileStatus(path: directory.path("."))?.kind == .directory)
        #expect(symlink(path, directory.path("link")) == 0)
        #expect(FileStatus(path: directory.path("link"), followingLinks: false)?.kind == .symbolicLink)
        #expect(FileStatus(path: directory.path("link"))?.inode == status.inode)
        #expect(FileStatus(path: directory.path("missing")) == nil)
    }

    @Test func aLockIsHeldOnceAtATime() throws {
        let path = directory.path(".lock")
        var first = FileLock.tryExclusive(path)
        #expect(first != nil)
        #expect(FileLock.tryExclusive(path) == nil)
        first = nil  // released: the next holder gets it
        #expect(first == nil && FileLock.tryExclusive(path) != nil)
    }

    @Test func aMappingSeesWritesAndComparesAgainstAShadow() throws {
        let path = directory.path("shared")
        try AtomicFile.write([UInt8](repeating: 0, count: 8192), to: path)
        let mapping = try ReadOnlyMapping(path: path)
        #expect(mapping.sizeInBytes == 8192)
        var shadow = [UInt8](repeating: 0, count: 16)
        #expect(!mapping.refresh(at: 4096, count: 16, &shadow, at: 0))
        let writer = try OwnedFileDescriptor.open(path, .writeOnly)
        try writer.writeAll([7, 8, 9], at: 4100, subject: path)
        #expect(mapping.bytes(at: 4100, count: 3) == [7, 8, 9])
        #expect(mapping.refresh(at: 4096, count: 16, &shadow, at: 0))
        #expect(shadow[4...6] == [7, 8, 9])
        var words = [UInt32](repeating: 0, count: 2)
        mapping.copy(at: 4100, count: 4, into: &words, atByte: 4)
        #expect(words[1] == UInt32(7) | UInt32(8) << 8 | UInt32(9) << 16)
    }

    @Test func anEmptyOrMissingFileIsNotMapped() throws {
        let empty = directory.path("empty")
        try AtomicFile.write([], to: empty)
        #expect(throws: SystemError.self) { _ = try ReadOnlyMapping(path: empty) }
        let error = #expect(throws: SystemError.self) { _ = try ReadOnlyMapping(path: directory.path("missing")) }
        #expect(error?.errno == .noSuchFileOrDirectory)
    }
}

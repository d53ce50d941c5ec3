import Glibc
import Testing
import TestSupport
@testable import LinuxSystem

/// Whole-file writes: the file appears complete, mode 0600, and no temporary file stays behind.
@Suite struct AtomicFileTests {
    private func leftovers(in directory: TemporaryDirectory) -> [String] {
        ((try? FileManagerShim.contents(of: directory.path("."))) ?? []).filter { $0.contains(".tmp-") }
    }

    @Test func writesTheWholeFileWithOwnerOnlyMode() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        try AtomicFile.write(Array("first".utf8), to: path)
        try AtomicFile.write(Array("second".utf8), to: path, .renameOnly)
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        #expect(try file.readWholeFile(limit: 100, subject: path) == Array("second".utf8))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func anUncommittedFileLeavesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("never")
        do {
            let file = try AtomicFile(path: path)
            try file.file.writeAll([1, 2, 3], subject: path)
            #expect(access(file.temporaryFilePath, F_OK) == 0)
        }
        #expect(access(path, F_OK) != 0)
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aMissingDirectoryIsNamed() {
        let error = #expect(throws: SystemCallError.self) { try AtomicFile.write([1], to: "/nonexistent-engram/dir/file") }
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.description.contains("/nonexistent-engram/dir/file") == true)
    }

    @Test func readWholeFileRefusesAFileOverTheLimit() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("big")
        try AtomicFile.write([UInt8](repeating: 7, count: 100), to: path)
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        #expect(throws: SystemCallError.self) { _ = try file.readWholeFile(limit: 99, subject: path) }
    }
}

/// Directory listing without Foundation in the target under test.
enum FileManagerShim {
    static func contents(of path: String) throws -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

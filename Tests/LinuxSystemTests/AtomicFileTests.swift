import Glibc
import Testing
import TestSupport
@testable import LinuxSystem

/// Whole-file writes: the file appears complete, mode 0600, and no temporary file stays behind;
/// a path that is not a regular file or nothing is refused untouched; a dead writer's leftover
/// goes, a live writer's stays. `unnamed` runs a test with O_TMPFILE and with the named fallback.
@Suite struct AtomicFileTests {
    private func leftovers(in directory: TemporaryDirectory) -> [String] {
        ((try? FileManagerShim.contents(of: directory.path("."))) ?? []).filter { $0.contains(".tmp-") }
    }

    private func contents(of path: String) throws -> [UInt8] {
        try OwnedFileDescriptor.open(path, .readOnly).readWholeFile(limit: 100, subject: path)
    }

    /// An owner-only file at `path` holding `bytes`, as a writer's temporary file is.
    private func create(_ path: String, _ bytes: [UInt8] = []) throws -> OwnedFileDescriptor {
        let file = try OwnedFileDescriptor.open(path, .readWrite, options: [.create, .exclusiveCreate], permissions: [.ownerReadWrite])
        try file.writeAll(bytes, subject: path)
        return file
    }

    @Test(arguments: [true, false]) func writesTheWholeFileWithOwnerOnlyMode(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        for (bytes, durability) in [(Array("first".utf8), AtomicFile.Durability.durable), (Array("second".utf8), .renameOnly)] {
            let file = try AtomicFile(path: path, protecting: [], allowingUnnamed: unnamed)
            try file.file.writeAll(bytes, subject: file.temporaryFilePath)
            try file.commit(durability)
        }
        #expect(try contents(of: path) == Array("second".utf8))
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(try FileManagerShim.contents(of: directory.path(".")) == ["file"])
    }

    @Test(arguments: [true, false]) func anUncommittedFileLeavesNothing(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        let path = directory.path("never")
        do {
            let file = try AtomicFile(path: path, protecting: [], allowingUnnamed: unnamed)
            try file.file.writeAll([1, 2, 3], subject: path)
            #expect(access(file.temporaryFilePath, F_OK) == (unnamed ? -1 : 0))
        }
        #expect(try FileManagerShim.contents(of: directory.path(".")).isEmpty)
    }

    @Test func anUnnamedFileIsInvisibleUntilCommitted() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        let file = try AtomicFile(path: path)
        try file.file.writeAll([1, 2, 3], subject: file.temporaryFilePath)
        #expect(try FileManagerShim.contents(of: directory.path(".")).isEmpty)
        #expect(file.temporaryFilePath.contains("unnamed temporary file for file"))
        try file.commit()
        #expect(try FileManagerShim.contents(of: directory.path(".")) == ["file"])
        #expect(try contents(of: path) == [1, 2, 3])
    }

    @Test(arguments: [true, false]) func withoutReplacingAnExistingFileIsKept(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        try AtomicFile.write([1], to: path)
        do {
            let file = try AtomicFile(path: path, protecting: [], allowingUnnamed: unnamed)
            try file.file.writeAll([2], subject: file.temporaryFilePath)
            let error = #expect(throws: SystemError.self) { try file.commit(replacingExisting: false) }
            #expect(error?.errno == .fileExists)
        }
        #expect(try contents(of: path) == [1])
        let fresh = try AtomicFile(path: directory.path("fresh"), protecting: [], allowingUnnamed: unnamed)
        try fresh.file.writeAll([3], subject: fresh.temporaryFilePath)
        try fresh.commit(replacingExisting: false)
        #expect(try contents(of: directory.path("fresh")) == [3])
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aMissingDirectoryIsNamed() {
        let error = #expect(throws: SystemError.self) { try AtomicFile.write([1], to: "/nonexistent-engram/dir/file") }
        #expect(error?.errno == .noSuchFileOrDirectory)
        #expect(error?.description.contains("/nonexistent-engram/dir/file") == true)
    }

    @Test func readWholeFileRefusesAFileOverTheLimit() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("big")
        try AtomicFile.write([UInt8](repeating: 7, count: 100), to: path)
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        #expect(throws: SystemError.self) { _ = try file.readWholeFile(limit: 99, subject: path) }
    }

    // MARK: - Refused paths

    @Test func aPathWithANULByteIsRefused() throws {
        let directory = TemporaryDirectory()
        // C would see only ".../a" and write there.
        let error = #expect(throws: SystemError.self) { try AtomicFile.write([1], to: directory.path("a") + "\0/b") }
        #expect(error?.errno == .invalidArgument)
        #expect(error?.description.contains("the path contains a NUL byte") == true)
        #expect(error?.description.contains("a\\0/b") == true)
        #expect(try FileManagerShim.contents(of: directory.path(".")).isEmpty)
    }

    @Test(arguments: [true, false]) func aSymbolicLinkIsRefusedAndItsTargetKept(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        let target = directory.path("target")
        try AtomicFile.write([1, 2], to: target)
        #expect(symlink(target, directory.path("link")) == 0)
        let error = #expect(throws: SystemError.self) {
            _ = try AtomicFile(path: directory.path("link"), protecting: [], allowingUnnamed: unnamed)
        }
        #expect(error?.errno == .tooManySymbolicLinkLevels)
        #expect(error?.description.contains("it is a symbolic link; expected a regular file or no file") == true)
        #expect(FileStatus(path: directory.path("link"), followingLinks: false)?.kind == .symbolicLink)
        #expect(try contents(of: target) == [1, 2])
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aDirectoryIsRefused() throws {
        let directory = TemporaryDirectory()
        #expect(mkdir(directory.path("sub"), 0o700) == 0)
        let error = #expect(throws: SystemError.self) { try AtomicFile.write([1], to: directory.path("sub")) }
        #expect(error?.errno == .isDirectory)
        #expect(error?.description.contains("it is a directory") == true)
        #expect(FileStatus(path: directory.path("sub"))?.kind == .directory)
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aFIFOIsRefused() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        let error = #expect(throws: SystemError.self) { try AtomicFile.write([1], to: path) }
        #expect(error?.errno == .invalidArgument)
        #expect(error?.description == "cannot write \(path): it is a FIFO; expected a regular file or no file")
        #expect(error?.refusal != nil)
        #expect(FileStatus(path: path)?.kind == .fifo)
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aUnixSocketIsRefused() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("sock")
        let socket = try UnixSocketPath.bind(path)
        defer { withExtendedLifetime(socket) {} }
        let error = #expect(throws: SystemError.self) { try AtomicFile.write([1], to: path) }
        #expect(error?.description.contains("it is a socket") == true)
        #expect(FileStatus(path: path)?.kind == .socket)
        #expect(leftovers(in: directory).isEmpty)
    }

    @Test func aProtectedFileIsRefusedByAnyName() throws {
        let directory = TemporaryDirectory()
        let ram = directory.path("ram")
        let held = try create(ram, [9, 9])
        let identity = try #require(FileIdentity(descriptor: held.rawValue))
        #expect(FileStatus(path: ram)?.identity == identity)
        #expect(link(ram, directory.path("alias")) == 0)
        for path in [ram, directory.path("alias")] {
            let error = #expect(throws: SystemError.self) { _ = try AtomicFile(path: path, protecting: [identity]) }
            #expect(error?.errno == .resourceBusy)
            #expect(error?.description.contains("it is this VM's own file: RAM or display") == true)
        }
        #expect(try contents(of: ram) == [9, 9])
        #expect(FileStatus(path: ram)?.identity == identity)
        // Any other file is still written.
        try AtomicFile.write([1], to: directory.path("other"))
        _ = try AtomicFile(path: directory.path("other"), protecting: [identity])
    }

    @Test(arguments: [true, false]) func aPathThatChangesBeforeCommitIsRefused(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        let path = directory.path("file")
        do {
            let file = try AtomicFile(path: path, protecting: [], allowingUnnamed: unnamed)
            try file.file.writeAll([1], subject: file.temporaryFilePath)
            #expect(mkfifo(path, 0o600) == 0)
            #expect(throws: SystemError.self) { try file.commit() }
        }
        #expect(FileStatus(path: path)?.kind == .fifo)
        #expect(leftovers(in: directory).isEmpty)
    }

    // MARK: - Leftovers

    @Test func temporaryNamesAreRecognised() {
        #expect(AtomicFile.isTemporaryName("x.snap.tmp-abc123"))
        #expect(AtomicFile.isTemporaryName(".tmp-ABCxyz"))
        #expect(!AtomicFile.isTemporaryName("x.snap.tmp-abc12"))
        #expect(!AtomicFile.isTemporaryName("x.snap.tmp-abc12_"))
        #expect(!AtomicFile.isTemporaryName("x.snap.tmp-abc123.png"))
        #expect(!AtomicFile.isTemporaryName("x.snap"))
    }

    @Test(arguments: [true, false]) func aDeadWritersTemporaryFileIsRemoved(unnamed: Bool) throws {
        let directory = TemporaryDirectory()
        // What a writer killed in the named scheme leaves: an owner-only file nobody has locked.
        _ = try create(directory.path("x.snap.tmp-abc123"), [1])
        _ = try create(directory.path("notes.tmp-abc123.txt"), [2])
        let file = try AtomicFile(path: directory.path("y.snap"), protecting: [], allowingUnnamed: unnamed)
        #expect(access(directory.path("x.snap.tmp-abc123"), F_OK) != 0)
        #expect(access(directory.path("notes.tmp-abc123.txt"), F_OK) == 0)
        try file.commit()
        #expect(access(directory.path("y.snap"), F_OK) == 0)
    }

    @Test func aLockedTemporaryFileIsKept() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("x.snap.tmp-abc123")
        let held = try create(path, [1])
        #expect(flock(held.rawValue, LOCK_EX) == 0)
        try AtomicFile.write([2], to: directory.path("y.snap"))
        #expect(try contents(of: path) == [1])
    }

    @Test func aLiveNamedWriterSurvivesAnotherWritersScan() throws {
        let directory = TemporaryDirectory()
        let first = try AtomicFile(path: directory.path("first"), protecting: [], allowingUnnamed: false)
        try first.file.writeAll([1], subject: first.temporaryFilePath)
        try AtomicFile.write([2], to: directory.path("second"))
        try AtomicFile(path: directory.path("third"), protecting: [], allowingUnnamed: false).commit()
        #expect(access(first.temporaryFilePath, F_OK) == 0)
        try first.commit()
        #expect(try contents(of: directory.path("first")) == [1])
        #expect(leftovers(in: directory).isEmpty)
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

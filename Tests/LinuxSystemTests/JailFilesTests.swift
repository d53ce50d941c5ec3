import Foundation
import Glibc
import Testing
import TestSupport
@testable import LinuxSystem

/// The jail's file work: copies keep holes, links share the inode, directories are made without
/// following a link, device nodes copy the host's device; the loader lists a program's libraries;
/// cgroup hierarchies are found for the controllers this host mounts.
struct JailFilesTests {
    let directory = TemporaryDirectory()

    @Test func aCopyKeepsDataAndHolesAndALinkSharesTheFile() throws {
        let source = directory.path("sparse")
        let fd = open(source, O_CREAT | O_WRONLY, 0o600)
        #expect(fd >= 0)
        #expect(ftruncate(fd, 64 << 20) == 0)
        #expect(pwrite(fd, "head", 4, 0) == 4 && pwrite(fd, "tail", 4, (64 << 20) - 4) == 4)
        close(fd)
        try JailFiles.copy(source, to: directory.path("copy"), mode: 0o400)
        let copied = try #require(FileStatus(path: directory.path("copy")))
        #expect(copied.sizeInBytes == 64 << 20 && copied.permissions == 0o400)
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory.path("copy"))) == (try Data(contentsOf: URL(fileURLWithPath: source))))
        var info = stat()
        #expect(stat(directory.path("copy"), &info) == 0 && info.st_blocks * 512 < 1 << 20, "the hole stays a hole")
        #expect(throws: SystemError.self) { try JailFiles.copy(source, to: directory.path("copy"), mode: 0o400) }

        #expect(try JailFiles.linkOrCopy(source, to: directory.path("linked"), copyMode: 0o400))
        #expect(FileStatus(path: directory.path("linked"))?.inode == FileStatus(path: source)?.inode)
    }

    @Test func directoriesAreMadeWithoutFollowingALink() throws {
        try JailFiles.makeDirectories(directory.path("a/b/c"), beneath: directory.url.path)
        #expect(FileStatus(path: directory.path("a/b/c"))?.kind == .directory)
        try JailFiles.makeDirectory(directory.path("a/b/c"))  // kept
        #expect(symlink("/etc", directory.path("planted")) == 0)
        #expect(throws: SystemError.self) { try JailFiles.makeDirectory(directory.path("planted")) }
    }

    @Test(.enabled(if: getuid() == 0, "mknod needs root"))
    func aDeviceNodeStandsForTheHostsDevice() throws {
        try JailFiles.makeDeviceNode(directory.path("null"), like: "/dev/null", owner: 4242, group: 4243, mode: 0o600)
        let node = try #require(FileStatus(path: directory.path("null")))
        #expect(node.kind == .characterDevice && node.deviceNumber == FileStatus(path: "/dev/null")?.deviceNumber)
        #expect(node.owner == 4242 && node.group == 4243 && node.permissions == 0o600)
        #expect(throws: SystemError.self) { try JailFiles.makeDeviceNode(directory.path("x"), like: "/etc/hostname", owner: 1, group: 1, mode: 0o600) }
    }

    @Test func theLoaderListsAProgramsLibraries() throws {
        let libraries = try SharedLibraries.of("/bin/sh")
        #expect(libraries.contains { $0.hasSuffix("/libc.so.6") })
        #expect(libraries.contains(SharedLibraries.loader))
        #expect(throws: SystemError.self) { try SharedLibraries.of("/etc/hostname") }
    }

    @Test func controllersAreFoundWhereTheHostMountsThem() throws {
        let memory = try #require(try ControlGroup.hierarchy(of: "memory"))
        #expect(FileManager.default.fileExists(atPath: memory.mountPoint + memory.ownGroup))
        #expect(try ControlGroup.hierarchy(of: "nosuchcontroller") == nil)
        #expect(UserAccounts.userID("root") == 0 && UserAccounts.userID("4242") == 4242 && UserAccounts.userID("no-such-user-engram") == nil)
        #expect(UserAccounts.groupID("root") == 0 && UserAccounts.groupID("no-such-group-engram") == nil)
    }
}

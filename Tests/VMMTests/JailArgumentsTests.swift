import Testing
@testable import VMM

/// How `engram jail` rewrites a VMM command line: every file it names is brought to the root by
/// name, options that cannot work in a jail are refused, and two files may not share a name.
struct JailArgumentsTests {
    @Test func filesAreBroughtToTheRootByName() throws {
        let jail = try JailArguments([
            "run", "--kernel", "/images/vmlinux", "--initrd=/images/initrd.img", "--memory", "256M",
            "--disk", "/disks/root.raw,id=root", "--disk", "/disks/data.raw,readonly", "--api-socket", "/run/engram/api.sock",
            "--vsock", "3,/run/engram/v.sock", "--console-log", "/var/log/console.log", "--secret-file", "/etc/engram/secret",
        ])
        #expect(jail.arguments == [
            "run", "--kernel=/vmlinux", "--initrd=/initrd.img", "--memory", "256M", "--disk=/root.raw,id=root", "--disk=/data.raw,readonly",
            "--api-socket=/api.sock", "--vsock=3,/v.sock", "--console-log=/console.log", "--secret-file=/secret",
        ])
        let uses = Dictionary(uniqueKeysWithValues: jail.files.map { ($0.host, $0.use) })
        #expect(uses == [
            "/images/vmlinux": .read, "/images/initrd.img": .read, "/disks/root.raw": .readWrite, "/disks/data.raw": .read,
            "/run/engram/api.sock": .created, "/run/engram/v.sock": .created, "/var/log/console.log": .created, "/etc/engram/secret": .read,
        ])
    }

    @Test func aRestoreBringsItsSnapshotAndParents() throws {
        let jail = try JailArguments(["restore", "--memory", "map", "/snaps/diff-2.engram", "--disk", "/disks/clone.raw"],
                                     snapshot: "/snaps/diff-2.engram", parents: ["/snaps/diff-1.engram", "/snaps/full.engram"])
        #expect(jail.arguments == ["restore", "--memory", "map", "/diff-2.engram", "--disk=/clone.raw"])
        #expect(jail.files.map(\.jailPath) == ["/diff-2.engram", "/diff-1.engram", "/full.engram", "/clone.raw"])
        // A page server's address is not a file.
        let remote = try JailArguments(["restore", "tcp://10.0.0.1:7000", "--memory", "lazy"])
        #expect(remote.arguments == ["restore", "tcp://10.0.0.1:7000", "--memory", "lazy"] && remote.files.isEmpty)
    }

    @Test func whatAJailCannotDoIsRefusedInOneLine() {
        #expect(throws: VMMError.invalidRequest("engram jail runs one of receive, restore, run after --, not \"serve\"")) {
            try JailArguments(["serve", "snap"])
        }
        #expect(throws: VMMError.invalidRequest("engram jail runs one of receive, restore, run after --, not nothing")) { try JailArguments([]) }
        #expect(throws: VMMError.self) { try JailArguments(["run", "--kernel", "k", "--hugetlbfs", "/dev/hugepages"]) }
        #expect(throws: VMMError.invalidRequest("engram jail: --kernel needs a value")) { try JailArguments(["run", "--kernel"]) }
        #expect(throws: VMMError.invalidRequest("engram jail: --vsock 3: expected a path as field 2")) { try JailArguments(["run", "--vsock", "3"]) }
        #expect(throws: VMMError.invalidRequest("engram jail: --kernel /images/..: expected a path ending in a file name")) {
            try JailArguments(["run", "--kernel", "/images/.."])
        }
    }

    @Test func twoFilesMayNotShareAName() {
        #expect(throws: VMMError.invalidRequest("engram jail: --disk /a/disk.raw and --disk /b/disk.raw would both be /disk.raw in the jail; give one another name")) {
            try JailArguments(["run", "--kernel", "/k", "--disk", "/a/disk.raw", "--disk", "/b/disk.raw"])
        }
        // The same file named twice is one file.
        #expect((try? JailArguments(["run", "--kernel", "/k", "--initrd", "/k"]))?.arguments == ["run", "--kernel=/k", "--initrd=/k"])
    }
}

import Foundation
import Testing
import TestSupport

/// `engram jail`: a jailed guest runs, snapshots and restores inside its own root; the jailed
/// VMM cannot read a host file outside the root nor signal a process outside its PID namespace;
/// it has no capabilities; cgroup limits hold; bad arguments are refused before anything is made.
@Suite(.enabled(if: TestKernel.available && getuid() == 0, "needs /dev/kvm, the test kernel and root"), .serialized)
struct JailTests {
    private let directory = TemporaryDirectory()
    private let user = "48151"

    private func jail(_ id: String, _ extra: [String] = [], _ command: [String], environment: [String: String] = [:]) throws -> GuestProcess {
        try GuestProcess.engram(["jail", "--id", id, "--uid", user, "--gid", user, "--chroot-base", directory.path("jails")] + extra + ["--"] + command, environment: environment)
    }

    private func root(_ id: String) -> String { directory.path("jails/\(id)/root") }

    /// The first child of process `pid`.
    private func child(of pid: Int32) throws -> Int32 {
        let children = try String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)
        return try #require(children.split(separator: " ").compactMap { Int32($0) }.first)
    }

    /// The jailed VMM: the child of the jail's init, the jailer's one child.
    private func vmm(of jailer: GuestProcess) throws -> Int32 { try child(of: try child(of: jailer.processID)) }

    /// The jailed VMM once it is the init's only child: after a transfer the old VMM exits at
    /// the lowest priority, beside the new one (seconds, on a loaded host).
    private func soleVMM(of jailer: GuestProcess) throws -> Int32 {
        let initPID = try child(of: jailer.processID)
        let deadline = Date().addingTimeInterval(60)
        while true {
            let children = try String(contentsOfFile: "/proc/\(initPID)/task/\(initPID)/children", encoding: .utf8)
                .split(separator: " ").compactMap { Int32($0) }
            if children.count == 1 || Date() > deadline { return try #require(children.first) }
            usleep(50_000)
        }
    }

    private func status(_ pid: Int32, _ field: String) throws -> String {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return line.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)
    }

    /// A jailed 64M guest with its control socket at /api.sock in the root, after `fill 8 4`: the
    /// jailer, the fill's digest, and the socket's path from outside.
    private func filledJail(_ id: String) throws -> (jailer: GuestProcess, digest: String, socket: String) {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let jailer = try jail(id, [], ["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M", "--api-socket", "/api.sock"])
        do {
            _ = try jailer.waitForLine(containing: "READY")
            let filled = try #require(TestKernel.field("digest", in: try jailer.command("fill 8 4", expect: "FILL ")))
            return (jailer, filled, root(id) + "/api.sock")
        } catch {
            jailer.stop()
            throw error
        }
    }

    private func digest(_ process: GuestProcess) throws -> String? {
        TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST "))
    }

    @Test func aJailedGuestRunsSnapshotsAndRestoresInItsJail() throws {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let hostFile = directory.path("host-secret")
        try "not for the guest".write(toFile: hostFile, atomically: true, encoding: .utf8)
        let probe = "read=\(hostFile),read=/engram-test-kernel.elf,signal=\(getpid()),signal=1"
        let first = try jail("first", [], ["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M", "--api-socket", "/run/vm/api.sock", "--rng", "on"],
                             environment: ["ENGRAM_TEST_JAIL_PROBE": probe])
        defer { first.stop() }
        _ = try first.waitForLine(containing: "READY")
        // Inside, the host's file is not there and the test's process does not exist; the jail's own are.
        let answer = try first.waitForErrorLine(containing: "jail probe:")
        #expect(answer.contains("read \(hostFile): No such file or directory"), "\(answer)")
        #expect(answer.contains("read /engram-test-kernel.elf: allowed"), "\(answer)")
        #expect(answer.contains("signal \(getpid()): No such process"), "\(answer)")
        #expect(answer.contains("signal 1: allowed"), "\(answer)")

        let pid = try vmm(of: first)
        #expect(try status(pid, "Uid").split(separator: "\t").allSatisfy { $0 == user })
        #expect(try status(pid, "Gid").split(separator: "\t").allSatisfy { $0 == user })
        for capabilities in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] { #expect(try status(pid, capabilities) == "0000000000000000", "\(capabilities)") }
        #expect(try status(pid, "NoNewPrivs") == "1")
        #expect(try status(pid, "Seccomp") == "2")
        #expect(try status(pid, "NSpid").split(separator: "\t").last == "2", "the VMM is process 2 of its own PID namespace, beside its init")
        let initPID = try child(of: first.processID)
        #expect(try status(initPID, "NSpid").split(separator: "\t").last == "1")
        #expect(try status(initPID, "Uid").split(separator: "\t").allSatisfy { $0 == user }, "the init keeps no privilege either")
        #expect(try status(initPID, "CapEff") == "0000000000000000")
        for namespace in ["pid", "mnt"] {
            let theirs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(namespace)")
            #expect(theirs != (try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/\(namespace)")), "\(namespace)")
        }
        // Its root is the jail's: through /proc/PID/root the kernel is there and the host's file is not.
        #expect(FileManager.default.fileExists(atPath: "/proc/\(pid)/root/engram-test-kernel.elf"))
        #expect(!FileManager.default.fileExists(atPath: "/proc/\(pid)/root" + hostFile))

        let filled = try #require(TestKernel.field("digest", in: try first.command("fill 8 3", expect: "FILL ")))
        #expect(try first.command("rng 0 32", expect: "RNG ").contains("bytes=32"))
        // The caller reaches the API socket inside the root; paths in requests are the jail's.
        let socket = root("first") + "/api.sock"
        let snapshot = try runEngram(["snapshot", socket, "/snap.engram"])
        #expect(snapshot.status == 0, "\(snapshot.errors)")
        let written = try FileManager.default.attributesOfItem(atPath: root("first") + "/snap.engram")
        #expect((written[.ownerAccountID] as? NSNumber)?.uint32Value == UInt32(user))
        first.stop()

        let second = try jail("second", [], ["restore", root("first") + "/snap.engram", "--memory", "map", "--api-socket", "/api.sock"])
        defer { second.stop() }
        _ = try second.waitForErrorLine(containing: "control API")
        #expect(try digest(second) == filled)
        #expect(FileManager.default.fileExists(atPath: root("second") + "/snap.engram"))
        #expect(FileManager.default.fileExists(atPath: root("second") + "/api.sock"))
        second.stop()

        // Lazy restore serves faults through the jail's own /dev/userfaultfd, as the unprivileged user.
        let third = try jail("third", [], ["restore", root("first") + "/snap.engram", "--memory", "lazy"])
        defer { third.stop() }
        _ = try third.waitForErrorLine(containing: "restored")
        #expect(try digest(third) == filled)
    }

    @Test(.enabled(if: TapNetwork.available, "needs ip netns and /dev/net/tun"))
    func aJailedGuestAnswersTheNetworkFromItsNamespace() throws {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let network = try TapNetwork(owner: user)
        let address = network.guestAddress(0)
        let guest = try jail("networked", ["--netns", "/run/netns/\(network.namespace)"], [
            "run", "--kernel", ProjectPaths.testKernel, "--memory", "64M", "--cmdline", "ip=\(address)/24", "--net", "tap=\(network.taps[0])",
            "--vsock", "3,/run/vsock.sock",
        ])
        defer { guest.stop() }
        _ = try guest.waitForLine(containing: "READY")
        #expect(try network.probeResult(["ping", address, "3"]) == "PING sent=3 received=3")
        // The vsock device's socket is in the root too, where the caller connects.
        #expect(FileManager.default.fileExists(atPath: root("networked") + "/vsock.sock"))
    }

    /// Live update in both modes inside the jail. A transfer hands the guest to a new process and
    /// the old one ends: the jail's init, not the VMM, holds the PID namespace open, so the new
    /// process runs on, and the jail ends with it.
    @Test func aJailedGuestCarriesOnThroughBothKindsOfLiveUpdate() throws {
        let (jailer, filled, socket) = try filledJail("updated")
        defer { jailer.stop() }
        let before = try vmm(of: jailer)
        for mode in ["exec", "transfer"] {
            let update = try runEngram(["update", socket, "--mode", mode], timeout: 120)
            #expect(update.status == 0 && update.output.contains("\"completed\""), "\(mode): \(update.output) \(update.errors)")
            #expect(try digest(jailer) == filled, "\(mode)")
        }
        // The guest now runs in another process of the jail, still unprivileged and filtered.
        let after = try soleVMM(of: jailer)
        #expect(after != before)
        #expect(try status(after, "Uid").split(separator: "\t").allSatisfy { $0 == user })
        #expect(try status(after, "Seccomp") == "2")
        #expect(try runEngram(["ctl", socket, "shutdown"]).status == 0)
        #expect(try jailer.waitForExit() == 0, "\(jailer.errorText)")
    }

    /// A fork inside the jail: the children start beside the parent in the jail's root and PID
    /// namespace, as its user with no capabilities and under the filters; their sockets and
    /// consoles are in the root, where the caller reaches them; the parent runs on.
    @Test func aJailedGuestForksInsideItsJail() throws {
        let (jailer, filled, socket) = try filledJail("forked")
        defer { jailer.stop() }
        let parent = try vmm(of: jailer)
        let answer = try runEngram(["fork", socket, "--count", "2"], timeout: 120)
        #expect(answer.status == 0, "\(answer.errors)")
        let report = (try? JSONSerialization.jsonObject(with: Data(answer.output.utf8))) as? [String: Any] ?? [:]
        let children = (report["children"] as? [[String: Any]]) ?? []
        #expect(report["started"] as? Int == 2 && children.count == 2, "\(report)")
        for child in children {
            // The child's paths are the jail's own: the caller finds them under the root.
            let inJail = try #require(child["api_socket"] as? String)
            let log = try #require(child["console_log"] as? String)
            #expect(FileManager.default.fileExists(atPath: root("forked") + log), "\(log)")
            let info = try runEngram(["ctl", root("forked") + inJail, "info"])
            #expect(info.status == 0 && info.output.contains("running"), "\(inJail): \(info.output) \(info.errors)")
        }
        // Every process under the jail's init: the parent and the two children, each unprivileged and filtered.
        var inside: [Int32] = []
        var unvisited = [try child(of: jailer.processID)]
        while let pid = unvisited.popLast() {
            // Each thread lists the children it started (the fork's come from a control thread).
            for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") {
                let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
                let below = text.split(separator: " ").compactMap { Int32($0) }
                inside += below
                unvisited += below
            }
        }
        #expect(inside.contains(parent) && inside.count == 3, "\(inside)")
        for pid in inside {
            #expect(try status(pid, "Uid").split(separator: "\t").allSatisfy { $0 == user }, "\(pid)")
            #expect(try status(pid, "CapEff") == "0000000000000000", "\(pid)")
            #expect(try status(pid, "Seccomp") == "2", "\(pid)")
            #expect(try status(pid, "NSpid").split(separator: "\t").count == 2, "\(pid) is in the jail's PID namespace")
        }
        #expect(try digest(jailer) == filled)
        for child in children {
            let inJail = try #require(child["api_socket"] as? String)
            #expect(try runEngram(["ctl", root("forked") + inJail, "shutdown"]).status == 0)
        }
        #expect(try runEngram(["ctl", socket, "shutdown"]).status == 0)
        #expect(try jailer.waitForExit() == 0, "\(jailer.errorText)")
    }

    @Test func aDaemonizedJailDetachesAndSaysWhereItIs() throws {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let started = try runEngram(["jail", "--id", "daemon", "--uid", user, "--gid", user, "--chroot-base", directory.path("jails"), "--daemonize", "--",
                                     "run", "--kernel", ProjectPaths.testKernel, "--memory", "64M", "--api-socket", "/api.sock"])
        #expect(started.status == 0, "\(started.errors)")
        let answer = try #require(try JSONSerialization.jsonObject(with: Data(started.output.utf8)) as? [String: Any], "\(started.output)")
        let pid = Int32(try #require(answer["pid"] as? Int))
        defer { kill(pid, SIGKILL) }
        #expect(answer["root"] as? String == root("daemon"))
        let socket = root("daemon") + "/api.sock"
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(20_000) }
        let state = try runEngram(["ctl", socket, "get", "/vm"])
        #expect(state.status == 0 && state.output.contains("running"), "\(state.output) \(state.errors)")
        #expect(try status(pid, "Uid").hasPrefix(user))
    }

    @Test func cgroupLimitsAreInForce() throws {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let limited = try jail("limited", ["--cgroup", "pids.max=64"], ["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M"])
        defer { limited.stop() }
        _ = try limited.waitForLine(containing: "READY")
        let pid = try vmm(of: limited)
        let membership = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
        let line = try #require(membership.first { $0.split(separator: ":")[1].split(separator: ",").contains("pids") || $0.hasPrefix("0::") && $0.contains("engram/limited") })
        #expect(line.hasSuffix("/engram/limited"), "\(line)")
        let group = try #require(Self.groupDirectory(controller: "pids", of: String(line)))
        #expect(try String(contentsOfFile: group + "/pids.max", encoding: .utf8).hasPrefix("64"))
        let current = Int(try String(contentsOfFile: group + "/pids.current", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(current > 1, "the VMM's threads count against the group")
        limited.stop()
        #expect(!FileManager.default.fileExists(atPath: group), "the jailer removes its group when the VMM has ended")

        // A memory limit holds: a guest that fills more than it allows ends the VMM (the kernel's
        // OOM killer), and the jailer reports that as 128 + SIGKILL.
        let memoryLimit = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers") ? "memory.max=128M" : "memory.limit_in_bytes=128M"
        let bounded = try jail("bounded", ["--cgroup", memoryLimit], ["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M"])
        defer { bounded.stop() }
        _ = try bounded.waitForLine(containing: "READY")
        bounded.send("fill 200 1\r")
        #expect(try bounded.waitForExit(timeout: 120) == 128 + SIGKILL, "\(bounded.errorText)")
        #expect(!bounded.consoleText.contains("FILL "))
    }

    /// The unified (v2) hierarchy's mount point, if the host mounts one holding hugetlb: here a
    /// hybrid host, whose v2 hierarchy holds only hugetlb; on a v2-only host, the one hierarchy.
    static let unifiedHugetlb: String? = {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        for mount in mounts.split(separator: "\n") {
            let fields = mount.split(separator: " ")
            guard fields.count > 2, fields[2] == "cgroup2" else { continue }
            let controllers = (try? String(contentsOfFile: fields[1] + "/cgroup.controllers", encoding: .utf8)) ?? ""
            if controllers.split(whereSeparator: \.isWhitespace).contains("hugetlb") { return String(fields[1]) }
        }
        return nil
    }()

    /// A cgroup v2 limit holds: the jailer makes the group in the unified hierarchy (enabling the
    /// controller down to it), the VMM is in it, and the kernel refuses the VMM a huge page beyond
    /// the limit, counting the refusal against the group (the reservation is charged to the group
    /// before the pool is asked, so the count says the limit refused it, not an empty pool).
    @Test(.enabled(if: unifiedHugetlb != nil, "the host mounts no cgroup v2 hierarchy holding hugetlb"))
    func aCgroupV2LimitHolds() throws {
        try FileManager.default.createDirectory(atPath: directory.path("jails"), withIntermediateDirectories: true)
        let jailed = try jail("hugetlb", ["--cgroup", "hugetlb.2MB.rsvd.max=0"], ["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M"],
                              environment: ["ENGRAM_TEST_JAIL_PROBE": "hugepages=1"])
        defer { jailed.stop() }
        _ = try jailed.waitForLine(containing: "READY")
        let answer = try jailed.waitForErrorLine(containing: "jail probe:")
        #expect(answer.contains("hugepages 1: Cannot allocate memory"), "\(answer)")
        let pid = try vmm(of: jailed)
        let membership = try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n")
        let line = try #require(membership.first { $0.hasPrefix("0::") })
        #expect(line.hasSuffix("/engram/hugetlb"), "\(line)")
        let group = try #require(Self.unifiedHugetlb) + String(line.dropFirst(3))
        #expect(try String(contentsOfFile: group + "/hugetlb.2MB.rsvd.max", encoding: .utf8).hasPrefix("0"))
        let events = try String(contentsOfFile: group + "/hugetlb.2MB.events", encoding: .utf8)
        let refusals = events.split(separator: "\n").first { $0.hasPrefix("max ") }.flatMap { Int($0.dropFirst(4)) } ?? 0
        #expect(refusals >= 1, "\(events)")
        jailed.stop()
        #expect(!FileManager.default.fileExists(atPath: group), "the jailer removes its group when the VMM has ended")
    }

    /// The directory of the group `line` (from /proc/PID/cgroup) names, in the hierarchy mounted for `controller`.
    private static func groupDirectory(controller: String, of line: String) -> String? {
        let path = String(line.split(separator: ":", maxSplits: 2)[2])
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        for mount in mounts.split(separator: "\n") {
            let fields = mount.split(separator: " ")
            guard fields.count > 3 else { continue }
            if fields[2] == "cgroup" && fields[3].split(separator: ",").contains(Substring(controller)) { return String(fields[1]) + path }
            if fields[2] == "cgroup2" && line.hasPrefix("0::") { return String(fields[1]) + path }
        }
        return nil
    }

    @Test func badArgumentsAreRefusedInOneLineBeforeAnythingIsMade() throws {
        let base = directory.path("jails")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let run = ["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M"]
        let cases: [(arguments: [String], id: String, expected: String)] = [
            (["--uid", "no-such-user-engram", "--gid", user], "a", "--uid no-such-user-engram: no such user"),
            (["--uid", user, "--gid", "no-such-group-engram"], "b", "--gid no-such-group-engram: no such group"),
            (["--uid", "0", "--gid", "0"], "c", "must not be root"),
            (["--uid", "4294967295", "--gid", user], "c2", "must be below 4294967295"),
            (["--uid", user, "--gid", user], "d/e", "--id d/e: expected 1 to 64 letters, digits and hyphens"),
            (["--uid", user, "--gid", user, "--cgroup", "pids.max"], "f", "expected CONTROLLER.FILE=VALUE"),
            (["--uid", user, "--gid", user, "--cgroup", "nosuchcontroller.max=1"], "g", "mounts no nosuchcontroller controller"),
            (["--uid", user, "--gid", user, "--netns", directory.path("no-such-netns")], "h", "no such network namespace file"),
        ]
        for (arguments, id, expected) in cases {
            let answer = try runEngram(["jail", "--id", id, "--chroot-base", base] + arguments + ["--"] + run)
            #expect(answer.status != 0)
            #expect(answer.errors.contains(expected) && answer.errors.split(separator: "\n").count == 1, "\(id): \(answer.errors)")
        }
        let missing = try runEngram(["jail", "--id", "i", "--uid", user, "--gid", user, "--chroot-base", base, "--", "run", "--kernel", directory.path("no-kernel"), "--memory", "64M"])
        #expect(missing.status != 0)
        #expect(missing.errors.contains("--kernel \(directory.path("no-kernel")): expected an existing regular file") && missing.errors.split(separator: "\n").count == 1, "\(missing.errors)")
        let other = try runEngram(["jail", "--id", "j", "--uid", user, "--gid", user, "--chroot-base", base, "--", "snapshot", "x"])
        #expect(other.errors.contains("engram jail runs one of receive, restore, run after --"), "\(other.errors)")
        let unparsable = try runEngram(["jail", "--id", "k", "--uid", user, "--gid", user, "--chroot-base", base, "--", "run", "--memory", "64M"])
        #expect(unparsable.status != 0 && unparsable.errors.contains("--kernel"), "\(unparsable.errors)")
        let noBase = try runEngram(["jail", "--id", "l", "--uid", user, "--gid", user, "--chroot-base", directory.path("no-base"), "--"] + run)
        #expect(noBase.errors.contains("expected an existing directory"), "\(noBase.errors)")
        // Nothing was made for any of them.
        #expect(try FileManager.default.contentsOfDirectory(atPath: base).isEmpty)

        // A root that exists with another owner is refused, and left as it was.
        try FileManager.default.createDirectory(atPath: base + "/owned/root", withIntermediateDirectories: true)
        #expect(chown(base + "/owned/root", 4242, 4242) == 0)
        let owned = try runEngram(["jail", "--id", "owned", "--uid", user, "--gid", user, "--chroot-base", base, "--"] + run)
        #expect(owned.status != 0)
        #expect(owned.errors.contains("exists and belongs to uid 4242, not the jail's user \(user)") && owned.errors.split(separator: "\n").count == 1, "\(owned.errors)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/owned/root").isEmpty)
    }
}

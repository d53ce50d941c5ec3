import Foundation
import Glibc
import LinuxSystem
import Testing
import TestSupport

/// `engram update`: the VMM execs a new binary in place; the guest carries on with the same
/// memory, clock and devices, and the control socket answers at the same path.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct LiveUpdateTests {
    let directory = TemporaryDirectory()

    /// Runs `engram update` and returns its JSON answer (GET /vm/update), expecting success.
    func update(_ socket: String, _ extra: [String] = []) throws -> [String: Any] {
        let result = try runEngram(["update", socket] + extra)
        #expect(result.status == 0, "\(result.errors)")
        let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        return try #require(object, "engram update printed \(result.output)")
    }

    func get(_ socket: String, _ path: String) throws -> [String: Any] {
        let result = try runEngram(["ctl", socket, "get", path])
        #expect(result.status == 0, "\(result.errors)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
    }

    /// A guest that filled memory, its digest and its tick count.
    func filledGuest(memory: String = "512M", fillMiB: Int = 24, extra: [String]) throws -> (GuestProcess, digest: String, ticks: Int) {
        let (process, _) = try TestKernel.boot(cpus: 2, memory: memory, cmdline: "cpus=2", extra: extra)
        let fill = try process.command("fill \(fillMiB) 5", expect: "FILL ", timeout: 120)
        let digest = try #require(TestKernel.field("digest", in: fill))
        return (process, digest, try TestKernel.ticks(process))
    }

    /// The guest goes on where it was: ticks never go back, memory digests the same, both CPUs answer.
    func expectCarriesOn(_ process: GuestProcess, digest: String, ticksBefore: Int) throws -> Int {
        let ticks = try TestKernel.ticks(process)
        #expect(ticks >= ticksBefore, "the tick count went back from \(ticksBefore) to \(ticks)")
        #expect(ticks < ticksBefore + 6000, "the clock jumped: \(ticksBefore) → \(ticks)")
        #expect(TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST ")) == digest)
        #expect(try process.command("cpus", expect: "CPUS ").contains("online=2"))
        return ticks
    }

    @Test func guestCarriesOnAcrossTwoUpdatesInARow() throws {
        let socket = directory.path("vm.sock"), log = directory.path("console.log")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket, "--console-log", log])
        defer { process.stop() }
        let (tag, _) = try TestKernel.writeTag(process)

        let first = try update(socket)
        #expect(first["status"] as? String == "completed")
        #expect(first["updates_completed"] as? Int == 1)
        #expect(first["pid"] as? Int == Int(process.processID), "the VMM keeps its process id")
        let last = try #require(first["last"] as? [String: Any])
        #expect(last["update"] as? Int == 1)
        #expect((last["downtime_milliseconds"] as? Double ?? 0) > 0)
        let afterFirst = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
        #expect(!FileManager.default.fileExists(atPath: socket + ".update"), "the handoff file is removed once the guest runs")

        // Again, naming the binary: the new process can itself be updated.
        let second = try update(socket, ["--binary", ProjectPaths.engram])
        #expect(second["updates_completed"] as? Int == 2)
        #expect((second["last"] as? [String: Any])?["update"] as? Int == 2)
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: afterFirst)
        #expect(try get(socket, "/vm")["state"] as? String == "running")
        // The tag page (outside the digested area) still holds what the guest wrote before the updates.
        let ram = try #require(try Self.ramDescriptor(pid: process.processID))
        #expect(try Data.read(ram.path, offset: 0x300000, count: tag.utf8.count) == Data(tag.utf8))

        // The console log was continued, not restarted: the fill from before and the digests after are both in it.
        let logged = try String(contentsOfFile: log, encoding: .utf8)
        #expect(logged.contains("FILL mib=24"))
        #expect(logged.components(separatedBy: "DIGEST mib=24").count - 1 >= 2)
        process.send("poweroff\r")
        #expect(try process.waitForExit() == 0)
    }

    /// A fork asked for after an update was accepted (pipelined behind it, so it arrives before
    /// the update starts) is refused: the update hands the new VMM the memory it found when
    /// accepted, which the fork would freeze under it, and the guest would resume on the base.
    @Test func aForkPipelinedBehindAnUpdateIsRefused() throws {
        let socket = directory.path("vm.sock")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket])
        defer { process.stop() }
        let client = try StreamSocket.connect(unixPath: socket)
        client.setReceiveTimeout(milliseconds: 30_000)
        let fork = #"{"count": 1}"#
        try client.send(Array(("PUT /vm/update HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            + "PUT /vm/fork HTTP/1.1\r\nHost: x\r\nContent-Length: \(fork.utf8.count)\r\n\r\n\(fork)").utf8))
        var answers = "", buffer = [UInt8](repeating: 0, count: 4096)
        while answers.components(separatedBy: "HTTP/1.1 ").count < 3 {
            guard let count = try? client.receive(into: &buffer, at: 0, count: buffer.count), count > 0 else { break }
            answers += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        #expect(answers.contains("HTTP/1.1 202"), "\(answers)")
        #expect(answers.contains("HTTP/1.1 409") && answers.contains("an update of this VM is under way; fork once it has ended"), "\(answers)")
        var status = ""
        for _ in 0..<600 where status != "completed" {
            status = (try? runEngram(["ctl", socket, "get", "/vm/update"]).output).flatMap {
                (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["status"] as? String
            } ?? ""
            if status != "completed" { usleep(100_000) }
        }
        #expect(status == "completed")
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
    }

    @Test func aPausedGuestStaysPausedAcrossAnUpdate() throws {
        let socket = directory.path("paused.sock")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket])
        defer { process.stop() }
        #expect(try runEngram(["ctl", socket, "pause"]).status == 0)
        _ = try update(socket)
        #expect(try get(socket, "/vm")["state"] as? String == "paused")
        #expect(try runEngram(["ctl", socket, "resume"]).status == 0)
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
    }

    /// A shell script standing in for a new binary.
    func script(_ name: String, _ body: String, mode: Int = 0o700) throws -> String {
        let path = directory.path(name)
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @Test func badBinariesAreRefusedAndTheGuestRunsOnUntouched() throws {
        let socket = directory.path("refuse.sock")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket])
        defer { process.stop() }
        let refusals: [(String, String)] = [
            (directory.path("no-such-engram"), "it does not exist"),
            (try script("not-executable", "exit 0", mode: 0o600), "it is not executable"),
            (try script("not-engram", "echo hello"), "did not answer with an Engram version"),
            (try script("fails", "echo 'unknown command' >&2; exit 64"), "exited with status 64: unknown command"),
            (try script("newer", #"echo '{"version":"9.0","machine_state_version":3,"update_handoff_version":1}'"#),
             "it reads machine state version 3; this VM's state is version 2"),
        ]
        for (binary, reason) in refusals {
            let result = try runEngram(["update", socket, "--binary", binary])
            #expect(result.status == 1)
            #expect(result.errors.contains("cannot update to \(binary): "), "\(result.errors)")
            #expect(result.errors.contains(reason), "\(result.errors)")
            #expect(result.errors.contains("(HTTP 400)"))
        }
        let state = directory.path("missing-dir/vm.update")
        let misplaced = try runEngram(["update", socket, "--state-path", state])
        #expect(misplaced.status == 1 && misplaced.errors.contains("its directory is missing or not writable"), "\(misplaced.errors)")
        #expect(process.isRunning)
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
        let status = try get(socket, "/vm/update")
        #expect(status["status"] as? String == "idle")
        #expect(status["updates_completed"] as? Int == 0)
    }

    /// Transfer mode: the new VMM starts beside the old one and makes its VM first; the guest
    /// carries on there with the same memory, ticks, CPUs and control socket, the old process ends
    /// with status 0, and the new one can be updated again (by exec) and shut down.
    @Test func aTransferModeUpdateCarriesOnInTheNewProcess() throws {
        let socket = directory.path("transfer.sock")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket])
        defer { process.stop() }
        let generation = try process.command("genid", expect: "GENID ")
        let answer = try update(socket, ["--mode", "transfer"])
        #expect(try process.waitForExit() == 0, "the old VMM ends once the new one runs the guest")
        #expect(process.errorText.contains("by transfer: the guest runs in pid"), "\(process.errorText)")
        let pid = try #require(answer["pid"] as? Int)
        #expect(pid != Int(process.processID))
        defer { if Glibc.kill(Int32(pid), 0) == 0 { Glibc.kill(Int32(pid), SIGKILL) } }
        let last = try #require(answer["last"] as? [String: Any])
        #expect(last["mode"] as? String == "transfer" && last["status"] as? String == "completed", "\(answer)")
        #expect((last["downtime_milliseconds"] as? Double ?? 0) > 0)
        let after = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
        #expect(try get(socket, "/vm")["state"] as? String == "running")

        let again = try update(socket)
        #expect(again["pid"] as? Int == pid, "an exec-mode update keeps the new process's id")
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: after)
        // The same VM goes on: both kinds of update keep its generation ID and send no event.
        #expect(try process.command("genid", expect: "GENID ") == generation)
        #expect(try runEngram(["ctl", socket, "shutdown"]).status == 0)
        var ended = false
        for _ in 0..<200 where !ended {
            ended = Glibc.kill(Int32(pid), 0) != 0
            if !ended { usleep(50_000) }
        }
        #expect(ended, "the new VMM ends on shutdown")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// A new binary that dies before the state is sent (it exits at once, or cannot open KVM)
    /// leaves the guest running in the old process, which never paused it.
    @Test(.enabled(if: getuid() == 0, "needs root for a private mount namespace"))
    func aNewVMMThatDiesBeforeTheStateIsSentLeavesTheGuestRunningHere() throws {
        let socket = directory.path("transfer-fails.sock")
        // The broken binary hides /dev/kvm with unshare and mount, which the filters forbid
        // (and would stop the VMM for): the fault is injected with the filters off.
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket, "--no-seccomp"])
        defer { process.stop() }
        let engram = ProjectPaths.engram
        let dies = try script("engram-dies", """
            if [ "$1" = version ]; then exec \(engram) "$@"; fi
            exit 3
            """)
        let withoutKVM = try script("engram-without-kvm", """
            if [ "$1" = version ]; then exec \(engram) "$@"; fi
            exec unshare --mount sh -c 'mount --bind /dev/null /dev/kvm && exec "$0" "$@"' \(engram) "$@"
            """)
        var before = ticks
        for (binary, reason) in [(dies, "closed the connection"), (withoutKVM, "could not get ready")] {
            let result = try runEngram(["update", socket, "--mode", "transfer", "--binary", binary])
            #expect(result.status == 1, "\(binary)")
            #expect(result.errors.contains(reason), "\(binary): \(result.errors)")
            let status = try get(socket, "/vm/update")
            #expect(status["pid"] as? Int == Int(process.processID))
            let last = try #require(status["last"] as? [String: Any])
            #expect(last["status"] as? String == "failed" && last["mode"] as? String == "transfer", "\(status)")
            before = try expectCarriesOn(process, digest: digest, ticksBefore: before)
        }
        #expect(!process.errorText.contains("by transfer: the guest runs in pid"), "\(process.errorText)")
    }

    /// The new binary starts but cannot rebuild the VM (here: /dev/kvm is not a KVM device in its
    /// mount namespace): it saves the guest as a snapshot at the state path and exits; `engram
    /// restore` brings the guest back with its memory intact.
    @Test(.enabled(if: getuid() == 0, "needs root for a private mount namespace"))
    func aNewProcessThatCannotContinueLeavesASnapshotToRestoreFrom() throws {
        let socket = directory.path("broken.sock"), state = directory.path("broken.state")
        // As above: unshare and mount, for the fault, need the filters off.
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket, "--no-seccomp"])
        defer { process.stop() }
        let engram = ProjectPaths.engram
        let broken = try script("engram-without-kvm", """
            if [ "$1" = version ]; then exec \(engram) "$@"; fi
            exec unshare --mount sh -c 'mount --bind /dev/null /dev/kvm && exec "$0" "$@"' \(engram) "$@"
            """)
        let result = try runEngram(["update", socket, "--binary", broken, "--state-path", state])
        #expect(result.status == 1)
        #expect(result.errors.contains("saved the guest in \(state)"), "\(result.errors)")
        #expect(try process.waitForExit() == 1)
        #expect(process.errorText.contains("update failed: "), "\(process.errorText)")
        #expect(process.errorText.contains("the guest is saved in \(state): `engram restore \(state)` brings it back"))

        let restored = try GuestProcess.engram(["restore", state, "--memory", "copy", "--api-socket", socket])
        defer { restored.stop() }
        _ = try expectCarriesOn(restored, digest: digest, ticksBefore: ticks)
    }

    /// The new process maps the very memfd the old one had, and reads none of it: right after the
    /// update its resident share of guest RAM is a few MiB however much the guest filled, so the
    /// update's cost does not grow with RAM. (Times are measured in bench/, not asserted here.)
    @Test(arguments: ["1G", "4G"])
    func updateKeepsTheSameMemoryAndReadsNoneOfIt(memory: String) throws {
        let socket = directory.path("size-\(memory).sock")
        let (process, digest, ticks) = try filledGuest(memory: memory, fillMiB: 512, extra: ["--api-socket", socket])
        defer { process.stop() }
        let pid = process.processID
        let before = try #require(try Self.ramDescriptor(pid: pid))
        let answer = try update(socket)
        let after = try #require(try Self.ramDescriptor(pid: pid))
        #expect(after.inode == before.inode, "guest RAM is the same memfd before and after")
        let resident = try #require(try Self.residentKiB(pid: pid, mapping: "memfd:engram-ram"))
        #expect(resident < 64 * 1024, "the new VMM has \(resident) KiB of guest RAM resident; it must not read the 512 MiB filled")
        let kvmVMs = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == "anon_inode:kvm-vm"
        }
        #expect(kvmVMs.count == 1, "the old VM's descriptors must not leak into the new process")
        let downtime = (answer["last"] as? [String: Any])?["downtime_milliseconds"] as? Double ?? -1
        print("live update of a \(memory) guest with 512 MiB filled: \(downtime) ms of downtime (debug build)")
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)
    }

    @Test func memoryThatDoesNotSurviveExecIsRefused() throws {
        let socket = directory.path("anon.sock")
        let (process, digest, ticks) = try filledGuest(extra: ["--api-socket", socket, "--anonymous-memory"])
        let refused = try runEngram(["update", socket])
        #expect(refused.status == 1)
        #expect(refused.errors.contains("region ram is private anonymous memory"), "\(refused.errors)")
        _ = try expectCarriesOn(process, digest: digest, ticksBefore: ticks)

        let snapshot = directory.path("anon.snap")
        #expect(try runEngram(["snapshot", socket, snapshot, "--stay-paused"]).status == 0)
        process.stop()
        let mapped = directory.path("mapped.sock")
        let restored = try GuestProcess.engram(["restore", snapshot, "--memory", "map", "--api-socket", mapped])
        defer { restored.stop() }
        _ = try TestKernel.ticks(restored)
        let copyOnWrite = try runEngram(["update", mapped])
        #expect(copyOnWrite.status == 1)
        #expect(copyOnWrite.errors.contains("restore with --memory copy or lazy to allow live updates"), "\(copyOnWrite.errors)")
        #expect(copyOnWrite.errors.contains("(HTTP 409)"))
    }

    /// The process's guest-RAM memfd: a path that opens it, and its inode.
    static func ramDescriptor(pid: Int32) throws -> (path: String, inode: UInt64)? {
        for name in try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") {
            let path = "/proc/\(pid)/fd/\(name)"
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path), target.hasPrefix("/memfd:engram-ram") else {
                continue
            }
            var info = stat()
            guard stat(path, &info) == 0 else { continue }
            return (path, UInt64(info.st_ino))
        }
        return nil
    }

    /// The Rss of the process's mapping whose name contains `mapping`, from /proc/PID/smaps.
    static func residentKiB(pid: Int32, mapping: String) throws -> Int? {
        // procfs files report size 0: read to the end rather than by size.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps") else { return nil }
        defer { try? handle.close() }
        let smaps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        var inMapping = false
        for line in smaps.split(separator: "\n") {
            if let first = line.split(separator: " ").first, first.contains("-"), line.split(separator: " ").count >= 5 {
                inMapping = line.contains(mapping)
            } else if inMapping, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
            }
        }
        return nil
    }
}

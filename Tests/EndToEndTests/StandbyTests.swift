import Foundation
import Glibc
import Testing
import TestSupport

/// `engram standby` and PUT /vm/restore: a VMM made ready before it knows its snapshot becomes
/// that VM in every memory mode, from a file and from a page server; a snapshot that does not fit
/// (or whose devices cannot be opened) is refused and the standby VMM restores the next one; an
/// unused standby VMM ends cleanly.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"))
struct StandbyTests {
    let directory = TemporaryDirectory()

    /// A paused 2-vCPU guest's snapshot after a fill; what it reported.
    func snapshot(_ name: String, cpus: Int = 2, memory: String = "512M", extra: [String] = []) throws -> (path: String, digest: String, ticks: Int) {
        let path = directory.path(name)
        let socket = directory.path(name + ".sock")
        let (process, _) = try TestKernel.boot(cpus: cpus, memory: memory, extra: ["--api-socket", socket] + extra)
        defer { process.stop() }
        let digest = try #require(TestKernel.field("digest", in: try process.command("fill 24 5", expect: "FILL ")))
        let ticks = try TestKernel.ticks(process)
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        #expect(result.status == 0, "\(result.errors)")
        return (path, digest, ticks)
    }

    /// `engram standby ARGUMENTS --api-socket SOCKET`, once it serves.
    func standby(_ socket: String, _ arguments: [String]) throws -> GuestProcess {
        let process = try GuestProcess.engram(["standby", "--api-socket", socket] + arguments)
        _ = try process.waitForErrorLine(containing: "standby: ")
        return process
    }

    /// A request with curl; the HTTP status and the body.
    static func request(_ socket: String, _ method: String, _ path: String, _ body: [String: Any]? = nil) throws -> (status: Int, body: [String: Any]) {
        var arguments = ["-s", "-w", "\n%{http_code}", "--unix-socket", socket, "-X", method, "http://localhost\(path)"]
        if let body { arguments += ["-d", String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)] }
        let curl = try GuestProcess(executable: "/usr/bin/curl", arguments: arguments)
        #expect(try curl.waitForExit() == 0)
        let lines = curl.consoleText.split(separator: "\n")
        let status = Int(lines.last ?? "") ?? 0
        let object = lines.dropLast().last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        return (status, object)
    }

    @Test(arguments: ["map", "lazy", "copy"])
    func aStandbyVMMBecomesTheSnapshotsVM(mode: String) throws {
        let before = try snapshot("vm-\(mode).snap")
        let socket = directory.path("standby-\(mode).sock")
        let process = try standby(socket, ["--memory", "512M", "--cpus", "2"])
        defer { process.stop() }
        let shape = try Self.request(socket, "GET", "/vm")
        #expect(shape.body["state"] as? String == "standby" && shape.body["vcpus"] as? Int == 2, "\(shape)")
        #expect(try Self.request(socket, "PUT", "/vm/pause").status == 409)
        let restored = try Self.request(socket, "PUT", "/vm/restore", ["snapshot": before.path, "memory": mode])
        #expect(restored.status == 200, "\(restored)")
        #expect(restored.body["state"] as? String == "running")
        #expect((restored.body["milliseconds_to_running"] as? Double ?? 0) > 0, "\(restored)")
        let ticks = try TestKernel.ticks(process)
        #expect(ticks >= before.ticks && ticks < before.ticks + 6000, "\(before.ticks) → \(ticks)")
        #expect(TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST ")) == before.digest)
        #expect(try process.command("cpus", expect: "CPUS ").contains("online=2"))
        _ = try process.command("fill 8 6", expect: "FILL ")
        // The socket is the VM's now: its routes, and no second restore.
        let info = try Self.request(socket, "GET", "/vm")
        #expect(info.body["state"] as? String == "running", "\(info)")
        let stats = try Self.request(socket, "GET", "/vm/memory/stats")
        #expect((stats.body["restore"] as? [String: Any])?["mode"] as? String == mode, "\(stats)")
        #expect(try Self.request(socket, "PUT", "/vm/restore", ["snapshot": before.path]).status == 409)
        #expect(try Self.request(socket, "PUT", "/vm/pause").status == 200)
        #expect(try Self.request(socket, "PUT", "/vm/shutdown").status == 200)
        #expect(try process.waitForExit() == 0)
    }

    /// A restore whose machine cannot start (the test-only ENGRAM_TEST_START_FAILURE makes it so)
    /// is answered with the reason and the standby VMM ends: its control server's stop waited for
    /// the very request that was waiting on the start, and the process hung.
    @Test func aRestoreThatCannotStartIsAnsweredAndTheVMMEnds() throws {
        let before = try snapshot("vm-start.snap")
        let socket = directory.path("standby-start.sock")
        let process = try GuestProcess.engram(["standby", "--api-socket", socket, "--memory", "512M", "--cpus", "2"],
                                              environment: ["ENGRAM_TEST_START_FAILURE": "1"])
        defer { process.stop() }
        _ = try process.waitForErrorLine(containing: "standby: ")
        let refused = try Self.request(socket, "PUT", "/vm/restore", ["snapshot": before.path, "memory": "map"])
        #expect(refused.status == 500 && "\(refused.body)".contains("did not start"), "\(refused)")
        #expect(try process.waitForExit(timeout: 60) != 0)
    }

    /// Refusals leave the standby VMM as it was: a snapshot of another shape is refused before
    /// anything is touched, one whose disk is gone after the VM was used (a fresh one is prepared),
    /// and the next request (from a page server, lazily) restores.
    @Test func refusedSnapshotsLeaveTheStandbyVMMReadyForTheNext() throws {
        let disk = directory.path("disk.img")
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        let small = try snapshot("small.snap", cpus: 1, memory: "256M")
        let withDisk = try snapshot("disk.snap", extra: ["--disk", disk])
        let fits = try snapshot("fits.snap")
        try FileManager.default.removeItem(atPath: disk)
        let secret = directory.path("secret")
        try Data((0..<32).map { _ in "0123456789abcdef".randomElement()! }.map { String($0) }.joined().utf8).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let server = try GuestProcess.engram(["serve", fits.path, "--listen", "127.0.0.1:0", "--secret-file", secret])
        defer { server.stop() }
        let serving = try server.waitForErrorLine(containing: "serving ")
        let port = try #require(serving.components(separatedBy: " on ").last?.split(separator: " ").first?.split(separator: ":").last)

        let socket = directory.path("standby.sock")
        let process = try standby(socket, ["--memory", "512M", "--cpus", "2", "--secret-file", secret])
        defer { process.stop() }
        let cases: [([String: Any], String)] = [
            (["snapshot": small.path], "this standby VMM has 512 MiB"),
            (["snapshot": withDisk.path, "memory": "copy"], "disk.img"),  // fails after its memory is in: discarded
            (["snapshot": fits.path, "memory": "sideways"], "expected"),
            (["snapshot": directory.path("missing.snap")], "missing.snap"),
        ]
        for (body, message) in cases {
            let answer = try Self.request(socket, "PUT", "/vm/restore", body)
            #expect(answer.status == 400, "\(body): \(answer)")
            #expect((answer.body["error"] as? String ?? "").contains(message), "\(body): \(answer)")
            #expect(try Self.request(socket, "GET", "/vm").body["state"] as? String == "standby")
        }
        let restored = try Self.request(socket, "PUT", "/vm/restore", ["snapshot": "tcp://127.0.0.1:\(port)", "memory": "lazy"])
        #expect(restored.status == 200, "\(restored)")
        #expect(TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST ")) == fits.digest)
        #expect(try TestKernel.ticks(process) >= fits.ticks)
    }

    @Test func anUnusedStandbyVMMEndsCleanlyOnShutdownOrSignal() throws {
        let socket = directory.path("unused.sock")
        let asked = try standby(socket, ["--memory", "256M"])
        // Its rehearsal (a snapshot of its own, read as a restore would) left nothing beside the socket.
        let beside = try FileManager.default.contentsOfDirectory(atPath: directory.url.path).filter { $0.hasPrefix(".engram") || $0.hasSuffix(".snap") }
        #expect(beside.isEmpty, "\(beside)")
        #expect(try Self.request(socket, "PUT", "/vm/shutdown").status == 200)
        #expect(try asked.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(asked.errorText.contains("standby VMM ended unused"), "\(asked.errorText)")

        let signalled = try standby(socket, ["--memory", "256M"])
        _ = Glibc.kill(signalled.processID, SIGTERM)
        #expect(try signalled.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test func badStandbyOptionsEndItInOneLine() throws {
        let cases: [([String], String)] = [
            (["standby", "--memory", "256M", "--cpus", "0", "--api-socket", directory.path("a.sock")], "--cpus 0"),
            (["standby", "--memory", "1000", "--api-socket", directory.path("b.sock")], "--memory"),
            (["standby", "--memory", "256M"], "--api-socket"),
            (["standby", "--memory", "256M", "--api-socket", directory.path("c.sock"), "--disk", ",readonly"], "disk"),
        ]
        for (arguments, message) in cases {
            let result = try runEngram(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.errors.contains(message), "\(arguments): \(result.errors)")
        }
    }
}

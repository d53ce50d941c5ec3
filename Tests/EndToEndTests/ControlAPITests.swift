import Foundation
import Testing
import TestSupport

/// The control API on a live VM: state, regions, pause that stops all progress, bad requests, shutdown.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct ControlAPIEndToEndTests {
    let directory = TemporaryDirectory()

    func ctl(_ socket: String, _ arguments: String...) throws -> (status: Int32, output: String, errors: String) {
        try runEngram(["ctl", socket] + arguments)
    }

    @Test func reportsTheVMAndItsRegions() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        defer { process.stop() }
        let mode = try FileManager.default.attributesOfItem(atPath: socket)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let info = try ctl(socket, "info")
        #expect(info.status == 0)
        let vm = try JSONSerialization.jsonObject(with: Data(info.output.utf8)) as? [String: Any]
        #expect(vm?["state"] as? String == "running")
        #expect(vm?["vcpus"] as? Int == 2)
        #expect(vm?["memory_size_in_bytes"] as? Int == 256 << 20)
        let memory = try ctl(socket, "memory")
        let report = try JSONSerialization.jsonObject(with: Data(memory.output.utf8)) as? [String: Any]
        let regions = report?["regions"] as? [[String: Any]]
        #expect(regions?.first?["name"] as? String == "ram")
        #expect(regions?.first?["backing"] as? String == "memfd")
        let ranges = regions?.first?["ranges"] as? [[String: Any]]
        #expect(ranges?.first?["guest_address"] as? Int == 0)
        #expect(ranges?.first?["size_in_bytes"] as? Int == 256 << 20)
    }

    @Test func pausedGuestMakesNoProgressUntilResumed() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        defer { process.stop() }
        try process.command("heartbeat 100", expect: "HEARTBEAT")
        try process.waitForLine(containing: "TICK ", after: process.consoleText.utf8.count)
        let before = try TestKernel.ticks(process)
        #expect(try ctl(socket, "pause").status == 0)
        #expect(try ctl(socket, "info").output.contains("\"paused\""))
        let frozen = process.consoleText.utf8.count
        process.send("ticks\r")  // typed while paused: answered only after resume
        Thread.sleep(forTimeInterval: 2.0)
        #expect(process.consoleText.utf8.count == frozen, "the guest printed while paused")
        #expect(try ctl(socket, "pause").errors.contains("HTTP 409"))
        #expect(try ctl(socket, "resume").status == 0)
        let answer = try process.waitForLine(containing: "TICKS ", after: frozen)
        let after = Int(answer.split(separator: " ").last ?? "") ?? -1
        // 2 s paused at 100 Hz would be 200 ticks; a paused timer adds only the few around the pause.
        #expect(after >= before && after - before < 100, "ticks went from \(before) to \(after) across a 2 s pause")
        try process.waitForLine(containing: "TICK ", after: process.consoleText.utf8.count)
    }

    @Test func malformedRequestsGetJSONErrorsAndTheGuestRunsOn() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let garbage = try Process.run(URL(fileURLWithPath: "/usr/bin/python3"), arguments: ["-c", """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"\\x00\\x01 NOT HTTP\\r\\n\\r\\n")
            print(s.recv(4096).decode(errors="replace"))
            """, socket])
        garbage.waitUntilExit()
        let wrongMethod = try ctl(socket, "get", "/vm/pause")
        #expect(wrongMethod.status != 0 && wrongMethod.errors.contains("HTTP 405"))
        let unknown = try ctl(socket, "get", "/nothing")
        #expect(unknown.errors.contains("HTTP 404"))
        #expect(try ctl(socket, "info").output.contains("\"running\""))
        #expect(try TestKernel.ticks(process) > 0)
    }

    @Test func shutdownEndsTheVMMWithStatusZero() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        let reply = try ctl(socket, "shutdown")
        #expect(reply.status == 0)
        #expect(reply.output.contains("stopping"))
        #expect(try process.waitForExit() == 0)
        #expect(!FileManager.default.fileExists(atPath: socket))
        let gone = try ctl(socket, "info")
        #expect(gone.status != 0 && gone.errors.contains("no VM is listening on \(socket)"))
    }
}

import Foundation
import Testing
import TestSupport

/// `engram restore` in each memory mode: the test kernel carries on where it was snapshotted.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct RestoreTests {
    let directory = TemporaryDirectory()

    /// A running 2-vCPU guest that filled memory, snapshotted while paused; returns what it reported.
    func snapshotOfFilledGuest(_ path: String) throws -> (digest: String, ticks: Int, tag: String) {
        let socket = directory.path("source.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, memory: "512M", extra: ["--api-socket", socket])
        defer { process.stop() }
        let fill = try process.command("fill 24 5", expect: "FILL ")
        let digest = try #require(TestKernel.field("digest", in: fill))
        let (tag, _) = try TestKernel.writeTag(process)
        let ticks = try TestKernel.ticks(process)
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        #expect(result.status == 0, "\(result.errors)")
        return (digest, ticks, tag)
    }

    @Test(arguments: ["copy", "map", "lazy"])
    func restoredGuestCarriesOn(mode: String) throws {
        let path = directory.path("vm-\(mode).snap")
        let before = try snapshotOfFilledGuest(path)
        let socket = directory.path("restored-\(mode).sock")
        let restored = try GuestProcess.engram(["restore", path, "--memory", mode, "--api-socket", socket])
        defer { restored.stop() }
        let ticksAfter = try TestKernel.ticks(restored)
        #expect(ticksAfter >= before.ticks, "the tick count went back from \(before.ticks) to \(ticksAfter)")
        #expect(ticksAfter < before.ticks + 6000, "the clock jumped: \(before.ticks) → \(ticksAfter)")
        let digest = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: digest) == before.digest)
        #expect(try restored.command("cpus", expect: "CPUS ").contains("online=2"))
        // Workloads run on: a new fill works and the ticks keep counting.
        _ = try restored.command("fill 8 6", expect: "FILL ")
        #expect(try TestKernel.ticks(restored) >= ticksAfter)

        let object = try Self.memoryStatistics(socket, until: { mode != "lazy" || ($0["lazy"] as? [String: Any])?["complete"] as? Bool == true })
        let restore = object["restore"] as? [String: Any]
        #expect(restore?["mode"] as? String == mode)
        #expect(restore?["chain_length"] as? Int == 1)
        if mode == "lazy" {
            let lazy = try #require(object["lazy"] as? [String: Any])
            let total = (512 << 20) / 4096
            #expect(lazy["total_pages"] as? Int == total)
            #expect(lazy["present_pages"] as? Int == total)
            let installed = ["demand_pages", "background_pages", "preexisting_pages"].map { lazy[$0] as? Int ?? 0 }
            #expect(installed.reduce(0, +) == total, "\(lazy)")
            #expect(lazy["failure"] == nil)
        } else {
            #expect(object["lazy"] == nil)
        }
        // The memory stays right once the fill is over.
        #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) != nil)
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    /// GET /vm/memory/stats, polled until `done` accepts it (a hang guard, not a timing check).
    static func memoryStatistics(_ socket: String, until done: ([String: Any]) -> Bool) throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(120)
        while true {
            let stats = try runEngram(["ctl", socket, "get", "/vm/memory/stats"])
            let object = try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any] ?? [:]
            if done(object) || Date() > deadline { return object }
            Thread.sleep(forTimeInterval: 0.2)
        }
    }
}

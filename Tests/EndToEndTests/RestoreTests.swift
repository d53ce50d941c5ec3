import Foundation
import Testing
import TestSupport

/// `engram restore` in each memory mode: the test kernel carries on where it was snapshotted.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct RestoreTests {
    let directory = TemporaryDirectory()

    /// A running 2-vCPU guest that filled memory, snapshotted while paused; returns what it reported.
    func snapshotOfFilledGuest(_ path: String) throws -> (digest: String, ticks: Int, tag: String, generation: String) {
        let socket = directory.path("source.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, memory: "512M", extra: ["--api-socket", socket])
        defer { process.stop() }
        let fill = try process.command("fill 24 5", expect: "FILL ")
        let digest = try #require(TestKernel.field("digest", in: fill))
        let (tag, _) = try TestKernel.writeTag(process)
        let ticks = try TestKernel.ticks(process)
        let generation = try #require(TestKernel.field("id", in: try process.command("genid", expect: "GENID ")))
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        #expect(result.status == 0, "\(result.errors)")
        return (digest, ticks, tag, generation)
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
        // A restored VM is a new instance of the saved one: a new generation ID, announced once.
        let generation = try restored.command("genid", expect: "GENID ")
        #expect(TestKernel.field("id", in: generation) != before.generation && TestKernel.field("events", in: generation) == "1", "\(generation)")
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
            let installed = ["demand_pages", "background_pages", "untouched_pages"].map { lazy[$0] as? Int ?? 0 }
            #expect(installed.reduce(0, +) == total, "\(lazy)")
            // Zero pages stay holes of the memfd rather than allocated memory.
            #expect((lazy["untouched_pages"] as? Int ?? 0) > total / 2, "\(lazy)")
            #expect(lazy["failure"] == nil)
        } else {
            #expect(object["lazy"] == nil)
        }
        // The memory stays right once the fill is over.
        #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) != nil)
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    /// A working set recorded by a lazy restore of a local file lands beside the snapshot (written
    /// by a thread whose filter allows it, not the fill's), and the next lazy restore prefetches it.
    @Test func aWorkingSetRecordedBesideALocalSnapshotIsPrefetched() throws {
        let path = directory.path("ws.snap")
        let saved = try snapshotOfFilledGuest(path)
        let recording = try GuestProcess.engram(["restore", path, "--memory", "lazy", "--record-working-set", "2"])
        defer { recording.stop() }
        #expect(TestKernel.field("digest", in: try recording.command("digest", expect: "DIGEST ")) == saved.digest)
        _ = try recording.waitForErrorLine(containing: "recorded a working set")
        #expect(FileManager.default.fileExists(atPath: path + ".workingset"))
        #expect(recording.isRunning, "\(recording.errorText)")
        recording.stop()
        let socket = directory.path("ws.api")
        let prefetched = try GuestProcess.engram(["restore", path, "--memory", "lazy", "--api-socket", socket])
        defer { prefetched.stop() }
        #expect(TestKernel.field("digest", in: try prefetched.command("digest", expect: "DIGEST ")) == saved.digest)
        let stats = try Self.memoryStatistics(socket) { ($0["lazy"] as? [String: Any])?["complete"] as? Bool == true }
        let lazy = try #require(stats["lazy"] as? [String: Any])
        #expect((lazy["prefetch_pages"] as? Int ?? 0) > 0, "\(lazy)")
    }

    /// A full snapshot and two diffs restore as one memory; the restored VM's own diff names
    /// the restored file as its parent, and that longer chain restores too.
    @Test func diffChainsRestoreAndGrowAfterRestore() throws {
        let socket = directory.path("chain.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        var digest = ""
        do {
            defer { process.stop() }
            _ = try process.command("fill 16 1", expect: "FILL ")
            #expect(try runEngram(["snapshot", socket, directory.path("base.snap")]).status == 0)
            _ = try process.command("fill 4 2", expect: "FILL ")
            #expect(try runEngram(["snapshot", socket, directory.path("d1.snap"), "--diff"]).status == 0)
            _ = try process.command("fill 6 3", expect: "FILL ")
            digest = try #require(TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST ")))
            let last = try runEngram(["snapshot", socket, directory.path("d2.snap"), "--diff", "--stay-paused"])
            #expect(last.status == 0, "\(last.errors)")
        }
        for mode in ["map", "lazy", "copy"] {
            let restoredSocket = directory.path("chain-\(mode).sock")
            let tracking = mode == "map" ? ["--track-dirty-pages"] : []
            let restored = try GuestProcess.engram(["restore", directory.path("d2.snap"), "--memory", mode, "--api-socket", restoredSocket] + tracking)
            defer { restored.stop() }
            #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) == digest, "mode \(mode)")
            let stats = try Self.memoryStatistics(restoredSocket) { _ in true }
            #expect((stats["restore"] as? [String: Any])?["chain_length"] as? Int == 3)
            guard mode == "map" else {
                // Without --track-dirty-pages the restored VM has no parent for a diff yet.
                let refused = try runEngram(["snapshot", restoredSocket, directory.path("never-\(mode).snap"), "--diff"])
                #expect(refused.status != 0 && refused.errors.contains("take a full one first"), "\(refused.errors)")
                continue
            }
            _ = try restored.command("fill 2 4", expect: "FILL ")
            let newDigest = try #require(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")))
            let diff = try runEngram(["snapshot", restoredSocket, directory.path("d3.snap"), "--diff", "--stay-paused"])
            #expect(diff.status == 0, "\(diff.errors)")
            restored.stop()
            let again = try GuestProcess.engram(["restore", directory.path("d3.snap"), "--memory", "copy"])
            defer { again.stop() }
            #expect(TestKernel.field("digest", in: try again.command("digest", expect: "DIGEST ")) == newDigest)
        }
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

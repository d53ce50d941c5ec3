import Foundation
import Testing
import TestSupport

/// virtio-balloon with the test kernel's driver: freed memory goes back to the host, the balloon
/// follows its target through the control API, deflates on OOM, reports statistics, and what the
/// guest gave back stays out of snapshots and survives a restore.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct BalloonTests {
    private let directory = TemporaryDirectory()
    private let shm = "/dev/shm/engram-balloon-\(getpid())-\(UUID().uuidString.prefix(8))"

    /// A RAM file on tmpfs, where its allocated blocks are exactly the memory the host holds for the guest.
    private func ramFile(_ name: String, megabytes: Int) throws -> String {
        let path = "\(shm)-\(name)"
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(megabytes) << 20)
        return path
    }

    /// Removes the tmpfs RAM files (the suite is serialized: one test's files at a time).
    private func removeRAMFiles() {
        for name in ["ram"] { unlink("\(shm)-\(name)") }
    }

    private func allocatedMiB(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? (Int(info.st_blocks) * 512) >> 20 : -1
    }

    private func api(_ socket: String, _ method: String, _ path: String, _ body: String? = nil) throws -> [String: Any] {
        let answer = try runEngram(["ctl", socket, method, path] + (body.map { ["--data", $0] } ?? []))
        #expect(answer.status == 0, "\(method) \(path): \(answer.errors)")
        return (try? JSONSerialization.jsonObject(with: Data(answer.output.utf8))) as? [String: Any] ?? [:]
    }

    private func field(_ key: String, _ line: String) -> Int { Int(TestKernel.field(key, in: line) ?? "") ?? -1 }

    @Test func freedMemoryGoesBackToTheHostAndStatisticsArrive() throws {
        let ram = try ramFile("ram", megabytes: 512)
        defer { removeRAMFiles() }
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(
            memory: "512M", extra: ["--ram-file", ram, "--balloon", "0,free_page_reporting,stats_interval_s=1", "--api-socket", socket])
        defer { process.stop() }
        let filled = try process.command("fill 256 7", expect: "FILL ")
        let held = allocatedMiB(ram)
        #expect(held >= 256)
        #expect(try process.command("free 192", expect: "FREE ").hasSuffix("filled_mib=64"))
        let settled = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("reported_mib", settled) == 192, "\(settled)")
        #expect(held - allocatedMiB(ram) >= 190, "the host got the freed 192 MiB back")
        let balloon = try api(socket, "get", "/vm/balloon")
        #expect((balloon["reported_bytes"] as? Int ?? 0) >= 192 << 20 && (balloon["discarded_bytes"] as? Int ?? 0) >= 192 << 20)
        #expect(balloon["free_page_reporting"] as? Bool == true && balloon["invalid_pages"] as? Int == 0)
        // What is left is intact: the digest of the remaining 64 MiB is a fresh 64 MiB fill's.
        let remaining = try process.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: try process.command("fill 64 7", expect: "FILL ")) == TestKernel.field("digest", in: remaining))
        #expect(TestKernel.field("digest", in: filled) != TestKernel.field("digest", in: remaining))
        // Statistics: the device gives the buffer back every second and the guest refreshes it.
        var statistics = try api(socket, "get", "/vm/balloon/statistics")
        let seen = statistics["updates"] as? Int ?? 0
        for _ in 0..<50 where (statistics["updates"] as? Int ?? 0) < seen + 2 {
            Thread.sleep(forTimeInterval: 0.1)
            statistics = try api(socket, "get", "/vm/balloon/statistics")
        }
        #expect((statistics["updates"] as? Int ?? 0) >= seen + 2)
        #expect((statistics["total_memory"] as? Int ?? 0) > 500 << 20 && (statistics["free_memory"] as? Int ?? 0) > 300 << 20)
        #expect(try api(socket, "patch", "/vm/balloon/statistics", #"{"stats_polling_interval_s": 3}"#)["stats_polling_interval_s"] as? Int == 3)
        let refused = try runEngram(["ctl", socket, "patch", "/vm/balloon/statistics", "--data", #"{"stats_polling_interval_s": 0}"#])
        #expect(refused.status != 0 && refused.errors.contains("cannot be turned off"))
    }

    @Test func theBalloonFollowsItsTargetAndDeflatesOnOOM() throws {
        let ram = try ramFile("ram", megabytes: 512)
        defer { removeRAMFiles() }
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(memory: "512M", extra: ["--ram-file", ram, "--balloon", "0,deflate_on_oom", "--api-socket", socket])
        defer { process.stop() }
        // 460 MiB used, then 360 MiB of it freed: without reporting the host still holds it...
        _ = try process.command("fill 460 1", expect: "FILL ")
        _ = try process.command("fill 100 2", expect: "FILL ")
        let before = allocatedMiB(ram)
        #expect(before >= 460)
        // ...until the balloon takes it (from the top of memory, where it lies).
        let set = try api(socket, "put", "/vm/balloon", #"{"amount_mib": 300}"#)
        #expect(set["amount_mib"] as? Int == 300 && set["target_pages"] as? Int == 300 * 256)
        let inflated = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("actual_mib", inflated) == 300 && field("target_mib", inflated) == 300, "\(inflated)")
        #expect(before - allocatedMiB(ram) >= 290)
        let balloon = try api(socket, "get", "/vm/balloon")
        #expect(balloon["actual_mib"] as? Int == 300 && balloon["inflated_pages"] as? Int == 300 * 256)
        // The guest needs more than is free: with deflate_on_oom it takes pages back.
        let fill = try process.command("fill 350 3", expect: "FILL ")
        #expect(fill.contains("mib=350"), "\(fill)")
        let after = try process.command("balloon", expect: "BALLOON ")
        #expect(field("oom_deflated", after) > 0 && field("actual_mib", after) < 300, "\(after)")
        // Down to nothing; a target past the guest's memory is refused.
        _ = try api(socket, "put", "/vm/balloon", #"{"amount_mib": 0}"#)
        #expect(field("actual_mib", try process.command("balloon settle", expect: "BALLOON ")) == 0)
        let tooBig = try runEngram(["ctl", socket, "put", "/vm/balloon", "--data", #"{"amount_mib": 4096}"#])
        #expect(tooBig.status != 0 && tooBig.errors.contains("4096"))
        #expect(try process.command("digest", expect: "DIGEST ").contains("mib=350"))
    }

    @Test func withoutDeflateOnOOMTheGuestCannotHaveTheBalloonsPages() throws {
        let (process, _) = try TestKernel.boot(memory: "256M", extra: ["--balloon", "200"])
        defer { process.stop() }
        let settled = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("actual_mib", settled) == 200, "\(settled)")
        let refused = try process.command("fill 200 1", expect: "ERROR fill")
        #expect(refused.contains("200 MiB in the balloon"), "\(refused)")
    }

    @Test func snapshotsLeaveFreedMemoryOutAndTheBalloonSurvivesARestore() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(memory: "512M", extra: ["--balloon", "16,free_page_reporting", "--api-socket", socket])
        defer { process.stop() }
        _ = try process.command("fill 256 5", expect: "FILL ")
        _ = try process.command("balloon settle", expect: "BALLOON ")
        let before = directory.path("before.snap"), after = directory.path("after.snap")
        #expect(try runEngram(["snapshot", socket, before]).status == 0)
        _ = try process.command("free 192", expect: "FREE ")
        _ = try process.command("balloon settle", expect: "BALLOON ")
        let digest = try process.command("digest", expect: "DIGEST ")
        #expect(try runEngram(["snapshot", socket, after]).status == 0)
        let sizes = [before, after].map(allocatedMiB)
        #expect(sizes[0] - sizes[1] >= 180, "the freed 192 MiB are not in the snapshot: \(sizes) MiB")
        process.stop()
        for mode in ["map", "lazy"] {
            let restoredSocket = directory.path("restored-\(mode).sock")
            let restored = try GuestProcess.engram(["restore", after, "--memory", mode, "--api-socket", restoredSocket])
            defer { restored.stop() }
            #expect(try restored.command("digest", expect: "DIGEST ") == digest)
            let balloon = try api(restoredSocket, "get", "/vm/balloon")
            #expect(balloon["amount_mib"] as? Int == 16 && balloon["actual_mib"] as? Int == 16 && balloon["free_page_reporting"] as? Bool == true)
            // The restored driver and device carry on: more is freed and reported, and the balloon moves.
            _ = try restored.command("free 32", expect: "FREE ")
            _ = try api(restoredSocket, "put", "/vm/balloon", #"{"amount_mib": 48}"#)
            let settled = try restored.command("balloon settle", expect: "BALLOON ")
            #expect(field("actual_mib", settled) == 48, "\(mode): \(settled)")
            #expect((try api(restoredSocket, "get", "/vm/balloon")["reported_bytes"] as? Int ?? 0) >= 32 << 20)
            #expect(try restored.command("digest", expect: "DIGEST ").contains("mib=32"))
        }
    }

    @Test func aHostileDriverBreaksOnlyItsQueueAndTheBalloonRecovers() throws {
        let socket = directory.path("api.sock")
        // Target 0 while the driver misbehaves: no inflate request of its own is on queue 0 then,
        // whose completion the misbehaving command would take for its own.
        let (process, _) = try TestKernel.boot(extra: ["--balloon", "0,free_page_reporting", "--api-socket", socket])
        defer { process.stop() }
        for kind in ["addr-outside-ram", "chain-loop", "chain-too-long", "len-overflow", "avail-idx-jump", "indirect-in-indirect"] {
            let line = try process.command("virtio evil 0 \(kind)", expect: "EVIL \(kind)")
            #expect(line.hasSuffix("result=needs_reset"), "\(kind): \(line)")
        }
        // After the driver's reset the balloon follows a new target and reports again.
        _ = try api(socket, "put", "/vm/balloon", #"{"amount_mib": 8}"#)
        _ = try process.command("fill 32 1", expect: "FILL ")
        _ = try process.command("free 16", expect: "FREE ")
        let settled = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("actual_mib", settled) == 8 && field("reported_mib", settled) >= 16, "\(settled)")
        let devices = try runEngram(["ctl", socket, "devices"]).output
        #expect(devices.contains("\"broken_queues\" : 6") || devices.contains("\"broken_queues\": 6"), "\(devices)")
    }

    @Test func theBalloonCarriesOnThroughBothKindsOfLiveUpdate() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(memory: "512M", extra: ["--balloon", "32,free_page_reporting,stats_interval_s=1", "--api-socket", socket])
        defer { process.stop() }
        // After the transfer the guest runs in another process, which stopping this one leaves running.
        defer { _ = try? runEngram(["ctl", socket, "shutdown"]) }
        _ = try process.command("fill 128 9", expect: "FILL ")
        #expect(field("actual_mib", try process.command("balloon settle", expect: "BALLOON ")) == 32)
        var previous = 32
        for (mode, target) in [("exec", 64), ("transfer", 96)] {
            // Longer than the command's own 60 s, so a slow update ends in its message, with the VMM's log beside it.
            let update = try runEngram(["update", socket, "--mode", mode], timeout: 120)
            #expect(update.status == 0, "\(mode): \(update.errors); the VMM said: \(process.errorText.suffix(3000))")
            let balloon = try api(socket, "get", "/vm/balloon")
            #expect(balloon["actual_mib"] as? Int == previous && balloon["amount_mib"] as? Int == previous, "after the \(mode) update")
            previous = target
            _ = try api(socket, "put", "/vm/balloon", "{\"amount_mib\": \(target)}")
            #expect(field("actual_mib", try process.command("balloon settle", expect: "BALLOON ")) == target, "after the \(mode) update")
            _ = try process.command("free 16", expect: "FREE ")
            #expect(field("reported_mib", try process.command("balloon settle", expect: "BALLOON ")) >= 16)
        }
        #expect(try process.command("digest", expect: "DIGEST ").contains("mib=96"))
    }

    @Test(.enabled(if: NetworkNamespacePair.available, "needs ip netns"))
    func theBalloonArrivesWithAMigratedGuest() throws {
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let (source, socket) = try pair.source("src", extra: ["--balloon", "24,free_page_reporting"])
        _ = try source.command("fill 64 4", expect: "FILL ")
        #expect(field("actual_mib", try source.command("balloon settle", expect: "BALLOON ")) == 24)
        let (destination, url) = try pair.receive()
        let migration = try pair.migrate(socket, to: url, mode: "precopy")
        #expect(migration.status == 0, "\(migration.errors)")
        let arrived = try destination.command("balloon settle", expect: "BALLOON ")
        #expect(field("actual_mib", arrived) == 24 && field("target_mib", arrived) == 24, "\(arrived)")
        _ = try destination.command("free 32", expect: "FREE ")
        #expect(field("reported_mib", try destination.command("balloon settle", expect: "BALLOON ")) >= 32)
        #expect(try destination.command("digest", expect: "DIGEST ").contains("mib=32"))
    }

    /// Sends QMP commands (after the capabilities handshake) to QEMU's socket; returns each answer line.
    private func qmp(_ socket: String, _ commands: [String]) throws -> [String] {
        let script = """
            import json, socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
            f.readline()
            for text in ["{\\"execute\\": \\"qmp_capabilities\\"}"] + sys.argv[2:]:
                f.write(text + "\\n"); f.flush()
                while True:
                    line = f.readline()
                    if "return" in line or "error" in line:
                        print(line.strip()); break
            """
        let python = try GuestProcess(executable: "/usr/bin/python3", arguments: ["-c", script, socket] + commands)
        #expect(try python.waitForExit() == 0, "QMP: \(python.errorText)")
        return Array(python.consoleText.split(separator: "\n").map(String.init).dropFirst())
    }

    /// The same driver against QEMU's virtio-balloon (microvm, virtio-mmio, free-page-reporting=on):
    /// reports free the memory in QEMU's RAM file, QMP's target is met, statistics reach QEMU.
    @Test func theSameDriverWorksAgainstQEMUsBalloon() throws {
        let qemu = try #require(QEMULinuxGuest.qemuExecutable, "qemu-system-x86_64 is part of the test setup")
        let ram = try ramFile("ram", megabytes: 512)
        defer { removeRAMFiles() }
        let socket = directory.path("qmp.sock")
        let process = try GuestProcess(executable: qemu, arguments: [
            "-M", "microvm,acpi=off,memory-backend=mem", "-accel", "kvm", "-m", "512M", "-smp", "1", "-nodefaults", "-no-user-config",
            "-nographic", "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
            "-object", "memory-backend-file,id=mem,size=512M,mem-path=\(ram),share=on", "-qmp", "unix:\(socket),server=on,wait=off",
            "-kernel", ProjectPaths.testKernel, "-append", "cpus=1",
            "-device", "virtio-balloon-device,id=balloon0,free-page-reporting=on,deflate-on-oom=on",
        ])
        defer { process.stop() }
        _ = try process.waitForLine(containing: "READY")
        let listing = try process.command("virtio", expect: "type=balloon")
        #expect(listing.contains("status=ok"), "\(listing)")
        let features = UInt64(TestKernel.field("features", in: listing)?.dropFirst(2) ?? "", radix: 16) ?? 0
        #expect(features & 0x26 == 0x26, "statistics, deflate on OOM and reporting negotiated: \(listing)")
        _ = try process.command("fill 256 7", expect: "FILL ")
        let held = allocatedMiB(ram)
        _ = try process.command("free 192", expect: "FREE ")
        let reported = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("reported_mib", reported) == 192, "\(reported)")
        #expect(held - allocatedMiB(ram) >= 180, "QEMU gave the reported memory back: \(held) → \(allocatedMiB(ram)) MiB")
        // QMP's balloon takes the guest's new size: 384 MiB, so the balloon holds 128.
        _ = try qmp(socket, [#"{"execute": "balloon", "arguments": {"value": 402653184}}"#])
        let inflated = try process.command("balloon settle", expect: "BALLOON ")
        #expect(field("actual_mib", inflated) == 128 && field("target_mib", inflated) == 128, "\(inflated)")
        let answers = try qmp(socket, [
            #"{"execute": "query-balloon"}"#,
            #"{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval", "value": 1}}"#,
        ])
        #expect(answers.first?.contains("402653184") == true, "\(answers)")
        var stats = ""
        for _ in 0..<40 where !stats.contains("stat-total-memory") {
            Thread.sleep(forTimeInterval: 0.25)
            stats = try qmp(socket, [#"{"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats"}}"#]).first ?? ""
        }
        #expect(stats.contains("\"stat-total-memory\": 536"), "\(stats)")
        #expect(try process.command("digest", expect: "DIGEST ").contains("mib=64"))
    }
}


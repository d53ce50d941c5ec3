import Foundation
import Testing
import TestSupport

/// virtio-blk and virtio-rng driven by the test kernel's drivers, under Engram and, for the same
/// commands on the same kind of file, under QEMU's device models: the drivers are checked against
/// devices nobody here wrote, and Engram's devices against those drivers.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VirtioDeviceTests {
    private let directory = TemporaryDirectory()

    private func makeDisk(_ name: String, megabytes: Int = 64) throws -> String {
        let path = directory.path(name)
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(megabytes) << 20)
        return path
    }

    /// The guest's device number for each device type, from its `virtio` listing.
    private func deviceNumbers(_ process: GuestProcess) throws -> [String: String] {
        let offset = process.consoleText.utf8.count
        _ = try process.command("virtio", expect: "VIRTIO devices=")
        var numbers: [String: String] = [:]
        for line in process.consoleText.utf8.dropFirst(offset).split(separator: UInt8(ascii: "\n")).compactMap({ String($0) })
        where line.hasPrefix("VIRTIO dev=") {
            #expect(TestKernel.field("status", in: line)?.hasPrefix("ok") == true, "\(line)")
            if let type = TestKernel.field("type", in: line), numbers[type] == nil { numbers[type] = TestKernel.field("dev", in: line) }
        }
        return numbers
    }

    /// The block commands both VMMs run, and what each printed (status and digest fields).
    private func runBlockScript(_ process: GuestProcess, blk: String) throws -> [String] {
        let script = [
            "blk \(blk) write 0 2048 11", "blk \(blk) write 4096 64 12", "blk \(blk) write 8000 3 13",
            "blk \(blk) read 0 2048", "blk \(blk) verify 4096 64 12", "blk \(blk) discard 0 256",
            "blk \(blk) zeroes 4100 8", "blk \(blk) read 0 512", "blk \(blk) read 4096 64", "blk \(blk) flush",
        ]
        return try script.map { command in
            let prefix = "BLK " + command.split(separator: " ")[2].uppercased()
            let line = try process.command(command, expect: prefix)
            return line.replacingOccurrences(of: "dev=\(blk) ", with: "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    @Test func blockAndEntropyServeTheTestKernel() throws {
        let disk = try makeDisk("engram.img")
        let readOnly = try makeDisk("ro.img", megabytes: 1)
        let (process, _) = try TestKernel.boot(extra: ["--disk", disk, "--disk", "\(readOnly),readonly,id=serial-ro", "--rng", "on"])
        defer { process.stop() }
        let write = try process.command("blk 0 write 100 16 7", expect: "BLK WRITE")
        #expect(TestKernel.field("status", in: write) == "ok")
        let read = try process.command("blk 0 read 100 16", expect: "BLK READ")
        #expect(TestKernel.field("digest", in: read) == TestKernel.field("digest", in: write))
        #expect(try process.command("blk 0 verify 100 16 7", expect: "BLK VERIFY").hasSuffix("ok"))
        // The image holds exactly the pattern at sector 100.
        let bytes = try Data.read(disk, offset: 100 * 512, count: 16 * 512)
        let expected = (0..<(16 * 64)).map { (index: Int) -> UInt64 in Self.splitmix64(7 ^ UInt64(100 * 64 + index)) }
        #expect(bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt64.self)) } == expected)
        #expect(try process.command("blk 1 id", expect: "BLK ID").hasSuffix("id=serial-ro"))
        #expect(TestKernel.field("status", in: try process.command("blk 1 write 0 1 1", expect: "BLK WRITE")) == "ioerr")
        #expect(TestKernel.field("ro", in: try process.command("blk 1 info", expect: "BLK dev=1")) == "1")
        let random = try process.command("rng 2 4096", expect: "RNG ")
        #expect(Int(TestKernel.field("distinct", in: random) ?? "0")! > 200)
    }

    @Test func theSameDriverGetsTheSameDisksFromEngramAndQEMU() throws {
        let qemu = try #require(QEMULinuxGuest.qemuExecutable, "qemu-system-x86_64 is part of the test setup")
        let engramDisk = try makeDisk("engram.img")
        let qemuDisk = try makeDisk("qemu.img")
        let engram = try GuestProcess.engram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "256M", "--cpus", "1",
                                              "--disk", engramDisk, "--rng", "on", "--cmdline", "cpus=1"])
        defer { engram.stop() }
        _ = try engram.waitForLine(containing: "READY")
        let qemuProcess = try GuestProcess(executable: qemu, arguments: [
            "-M", "microvm,acpi=off", "-accel", "kvm", "-m", "256M", "-smp", "1", "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-global", "virtio-mmio.force-legacy=false",
            "-kernel", ProjectPaths.testKernel, "-append", "cpus=1",
            "-drive", "id=d0,file=\(qemuDisk),format=raw,if=none,discard=unmap", "-device", "virtio-blk-device,drive=d0",
            "-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0",
        ])
        defer { qemuProcess.stop() }
        _ = try qemuProcess.waitForLine(containing: "READY")
        let engramDevices = try deviceNumbers(engram)
        let qemuDevices = try deviceNumbers(qemuProcess)
        let engramLines = try runBlockScript(engram, blk: try #require(engramDevices["blk"]))
        let qemuLines = try runBlockScript(qemuProcess, blk: try #require(qemuDevices["blk"]))
        #expect(engramLines == qemuLines)
        #expect(engramLines.allSatisfy { !$0.contains("status=") || $0.hasSuffix("status=ok") }, "\(engramLines)")
        for process in [engram, qemuProcess] {
            let rng = try process.command("rng \(try #require((process === engram ? engramDevices : qemuDevices)["rng"])) 4096", expect: "RNG ")
            #expect(Int(TestKernel.field("distinct", in: rng) ?? "0")! > 200)
            process.send("poweroff\r")
            _ = try process.waitForExit()
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: engramDisk)) == Data(contentsOf: URL(fileURLWithPath: qemuDisk)))
        var engramInfo = stat(), qemuInfo = stat()
        #expect(stat(engramDisk, &engramInfo) == 0 && stat(qemuDisk, &qemuInfo) == 0)
        #expect(engramInfo.st_blocks <= qemuInfo.st_blocks, "discarded ranges are holes in Engram's image too")
    }

    @Test func hostileRequestsAreRefusedAndTheDevicesRecover() throws {
        let disk = try makeDisk("evil.img", megabytes: 4)
        let (process, _) = try TestKernel.boot(extra: ["--disk", disk, "--rng", "on"])
        defer { process.stop() }
        let expected = [
            "addr-outside-ram": "needs_reset", "chain-loop": "needs_reset", "chain-too-long": "needs_reset", "len-overflow": "needs_reset",
            "past-end": "1", "avail-idx-jump": "needs_reset", "rewrite-in-flight": "needs_reset", "indirect-in-indirect": "needs_reset",
        ]
        for (kind, result) in expected.sorted(by: { $0.key < $1.key }) {
            let line = try process.command("virtio evil 0 \(kind)", expect: "EVIL \(kind)")
            // A request rewritten in flight may have been served before the rewrite (status 0), as with QEMU.
            let allowed = kind == "rewrite-in-flight" ? [result, "0"] : [result]
            #expect(allowed.contains(TestKernel.field("result", in: line) ?? ""), "\(line)")
        }
        #expect(TestKernel.field("result", in: try process.command("virtio evil 1 addr-outside-ram", expect: "EVIL ")) == "needs_reset")
        // Nothing was written outside the request that was allowed, and the devices work again.
        #expect(try Data(contentsOf: URL(fileURLWithPath: disk)).allSatisfy { $0 == 0 })
        #expect(TestKernel.field("status", in: try process.command("blk 0 write 8 8 3", expect: "BLK WRITE")) == "ok")
        #expect(try process.command("blk 0 verify 8 8 3", expect: "BLK VERIFY").hasSuffix("ok"))
        #expect(try process.command("rng 1 64", expect: "RNG ").contains("bytes=64"))
        #expect(try process.command("ticks", expect: "TICKS").hasPrefix("TICKS"), "the vCPU still runs")
    }

    @Test func badDiskOptionsEndTheVMMInOneLineBeforeItStarts() throws {
        let missing = directory.path("missing.img")
        let cases: [([String], String)] = [
            (["--disk", missing], "disk \(missing): no such file"),
            (["--disk", directory.path("")], "is a directory; expected a raw disk image file"),
            (["--disk", "\(missing),bogus"], "--disk \"\(missing),bogus\": expected PATH[,readonly][,id=NAME]"),
            (["--rng", "rate=0"], "--rng \"rate=0\": expected on, or rate="),
        ]
        for (options, message) in cases {
            let process = try GuestProcess.engram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M"] + options)
            #expect(try process.waitForExit() != 0)
            #expect(process.errorText.contains(message), "\(process.errorText)")
            #expect(!process.consoleText.contains("READY"))
        }
    }

    static func splitmix64(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The devices through the control API: GET /vm/devices reports files and counters, and
/// PATCH /vm/disk swaps a disk's file while the VM is paused, and sets its I/O limit at any time.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VirtioAPITests {
    private let directory = TemporaryDirectory()

    private func ctl(_ socket: String, _ arguments: String...) throws -> (status: Int32, object: [String: Any], errors: String) {
        let result = try runEngram(["ctl", socket] + arguments)
        let object = (try? JSONSerialization.jsonObject(with: Data(result.output.utf8))) as? [String: Any] ?? [:]
        return (result.status, object, result.errors)
    }

    @Test func devicesAreReportedAndADiskIsSwappedWhilePaused() throws {
        let first = directory.path("first.img"), second = directory.path("second.img"), socket = directory.path("vm.sock")
        FileManager.default.createFile(atPath: first, contents: Data(count: 8 << 20))
        let (process, _) = try TestKernel.boot(extra: ["--disk", "\(first),id=data", "--rng", "rate=4096,burst=1024", "--api-socket", socket])
        defer { process.stop() }
        #expect(TestKernel.field("status", in: try process.command("blk 0 write 0 64 3", expect: "BLK WRITE")) == "ok")
        #expect(try process.command("rng 1 512", expect: "RNG ").contains("bytes=512"))

        let listed = try ctl(socket, "devices")
        let devices = try #require(listed.object["devices"] as? [[String: Any]], "\(listed)")
        #expect(devices.map { $0["name"] as? String } == ["blk0", "rng0"])
        let disk = try #require(devices[0]["disk"] as? [String: Any])
        #expect(disk["path"] as? String == first && disk["id"] as? String == "data" && disk["read_only"] as? Bool == false)
        #expect(disk["written_bytes"] as? Int == 64 * 512 && disk["capacity_bytes"] as? Int == 8 << 20)
        #expect(devices[0]["mmio_address"] as? Int == 0xfeb0_0000 && devices[0]["interrupt_line"] as? Int == 5)
        #expect(devices[0]["needs_reset"] as? Bool == false)
        let entropy = try #require(devices[1]["entropy"] as? [String: Any])
        #expect(entropy["rate_bytes_per_second"] as? Int == 4096 && entropy["bytes_served"] as? Int == 512)
        #expect((try ctl(socket, "info").object["devices"] as? [Any])?.count == 2, "GET /vm lists them too")

        // The new file starts as a copy; the guest's next write lands in it, not in the old one.
        try FileManager.default.copyItem(atPath: first, toPath: second)
        let body = "{\"name\": \"blk0\", \"path\": \"\(second)\"}"
        let running = try ctl(socket, "patch", "/vm/disk", "--data", body)
        #expect(running.status != 0 && running.errors.contains("the VM is running"), "\(running.errors)")
        #expect(try ctl(socket, "pause").status == 0)
        let unknown = try ctl(socket, "patch", "/vm/disk", "--data", "{\"name\": \"blk9\", \"path\": \"\(second)\"}")
        #expect(unknown.status != 0 && unknown.errors.contains("blk9"), "\(unknown.errors)")
        let missing = try ctl(socket, "patch", "/vm/disk", "--data", "{\"name\": \"blk0\", \"path\": \"\(directory.path("none"))\"}")
        #expect(missing.status != 0 && missing.errors.contains("no such file"), "\(missing.errors)")
        let swapped = try ctl(socket, "patch", "/vm/disk", "--data", body)
        #expect(swapped.status == 0, "\(swapped.errors)")
        #expect((swapped.object["disk"] as? [String: Any])?["path"] as? String == second)
        #expect(try ctl(socket, "resume").status == 0)
        #expect(try process.command("blk 0 verify 0 64 3", expect: "BLK VERIFY").hasSuffix("ok"))
        #expect(TestKernel.field("status", in: try process.command("blk 0 write 0 8 4", expect: "BLK WRITE")) == "ok")
        #expect(try Data.read(first, offset: 0, count: 4096) != Data.read(second, offset: 0, count: 4096))
        #expect(try process.command("blk 0 verify 0 8 4", expect: "BLK VERIFY").hasSuffix("ok"))
    }

    /// A disk limited by `--disk …,iops=…` makes the guest's requests wait (they still complete,
    /// with the right data); PATCH /vm/disk changes or lifts the limit while the VM runs, and a
    /// snapshot carries it to the restored VM, where a `--disk` override without a limit keeps it.
    @Test func aDiskRateLimitIsAppliedChangedAndCarriedBySnapshots() throws {
        let disk = directory.path("limited.img"), socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        FileManager.default.createFile(atPath: disk, contents: Data(count: 8 << 20))
        let (process, _) = try TestKernel.boot(extra: ["--disk", "\(disk),iops=40,iops_burst=2", "--api-socket", socket])
        defer { process.stop() }
        let bench = try process.command("blk 0 bench randread 4096 4 24 1", expect: "BLK BENCH")
        #expect(TestKernel.field("status", in: bench) == "ok" && TestKernel.field("requests", in: bench) == "24", "\(bench)")
        func diskInfo(_ socket: String) throws -> [String: Any] {
            let listed = try ctl(socket, "devices")
            let devices = try #require(listed.object["devices"] as? [[String: Any]], "\(listed)")
            return try #require(devices.first?["disk"] as? [String: Any])
        }
        var info = try diskInfo(socket)
        #expect((info["throttled_requests"] as? Int ?? 0) > 0, "\(info)")
        let limit = try #require(info["rate_limit"] as? [String: Any])
        #expect((limit["operations"] as? [String: Any])?["rate"] as? Int == 40 && limit["bandwidth"] == nil, "\(limit)")

        let refused = try ctl(socket, "patch", "/vm/disk", "--data", "{\"name\": \"blk0\", \"rate_limit\": {\"bandwidth\": {\"rate\": 0}}}")
        #expect(refused.status != 0 && refused.errors.contains("rate_limit.bandwidth"), "\(refused.errors)")
        let empty = try ctl(socket, "patch", "/vm/disk", "--data", "{\"name\": \"blk0\"}")
        #expect(empty.status != 0 && empty.errors.contains("nothing to change"), "\(empty.errors)")
        let lifted = try ctl(socket, "patch", "/vm/disk", "--data", "{\"name\": \"blk0\", \"rate_limit\": {}}")
        #expect(lifted.status == 0 && (lifted.object["disk"] as? [String: Any])?["rate_limit"] == nil, "\(lifted)")
        let throttledBefore = try diskInfo(socket)["throttled_requests"] as? Int
        #expect(TestKernel.field("status", in: try process.command("blk 0 bench randread 4096 4 24 2", expect: "BLK BENCH")) == "ok")
        #expect(try diskInfo(socket)["throttled_requests"] as? Int == throttledBefore, "no limit, no wait")

        let body = "{\"name\": \"blk0\", \"rate_limit\": {\"bandwidth\": {\"rate\": 1048576, \"burst\": 65536}}}"
        #expect(try ctl(socket, "patch", "/vm/disk", "--data", body).status == 0)
        // The first 256 KiB write empties the bucket (a cost past the burst is paid from a full one); the next waits for it.
        #expect(TestKernel.field("status", in: try process.command("blk 0 write 0 512 5", expect: "BLK WRITE")) == "ok")
        #expect(TestKernel.field("status", in: try process.command("blk 0 write 512 512 6", expect: "BLK WRITE")) == "ok")
        info = try diskInfo(socket)
        #expect((info["throttled_requests"] as? Int ?? 0) > throttledBefore ?? 0, "a second 256 KiB write waits")
        #expect(try ctl(socket, "pause").status == 0)
        #expect(try diskInfo(socket)["image_syncs"] as? Int == 0)
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")
        #expect(try diskInfo(socket)["image_syncs"] as? Int == 1, "the image was synced before the state was taken")
        process.kill()

        let copy = directory.path("copy.img"), restoredSocket = directory.path("restored.sock")
        try FileManager.default.copyItem(atPath: disk, toPath: copy)
        let restored = try GuestProcess.engram(["restore", snapshot, "--disk", copy, "--api-socket", restoredSocket])
        defer { restored.stop() }
        #expect(try restored.command("blk 0 verify 0 512 5", expect: "BLK VERIFY").hasSuffix("ok"))
        #expect(try restored.command("blk 0 verify 512 512 6", expect: "BLK VERIFY").hasSuffix("ok"))
        let kept = try #require(try diskInfo(restoredSocket)["rate_limit"] as? [String: Any])
        #expect((kept["bandwidth"] as? [String: Any])?["burst"] as? Int == 65536, "\(kept)")
        restored.stop()

        // A saved limit of 0 (the file is data from outside) is refused in one line, not trapped on.
        let zero = directory.path("zero-limit.snap")
        try SnapshotSurgery.editSection("virtio.blk0", of: snapshot, writingTo: zero) { section in
            var disk = section["disk"] as! [String: Any]
            disk["rateLimit"] = ["bandwidth": ["rate": 0, "burst": 0]]
            section["disk"] = disk
        }
        let zeroRestore = try runEngram(["restore", zero, "--disk", copy])
        #expect(zeroRestore.status != 0 && zeroRestore.errors.split(separator: "\n").count == 1, "\(zeroRestore.errors)")
        #expect(zeroRestore.errors.contains("rate limit") && zeroRestore.errors.contains("at least 1"), "\(zeroRestore.errors)")
    }
}

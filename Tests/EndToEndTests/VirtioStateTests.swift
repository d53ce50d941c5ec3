import Foundation
import LinuxSystem
import Synchronization
import Testing
import TestSupport

/// Device state goes wherever memory goes: a disk write interrupted by a snapshot, a live update
/// or a migration finishes after it with nothing lost, and the devices keep working.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VirtioStateTests {
    let directory = TemporaryDirectory()
    /// 128 MiB: long enough that a pause usually lands mid-write.
    static let sectors = 262_144
    static let write = "blk 0 write 0 \(sectors) 21"
    static let verify = "blk 0 verify 0 \(sectors) 21"

    private func makeDisk(_ name: String) throws -> String {
        let path = directory.path(name)
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(Self.sectors) * 512)
        return path
    }

    private func ctl(_ socket: String, _ arguments: String...) throws {
        let result = try runEngram(["ctl", socket] + arguments)
        #expect(result.status == 0, "\(result.errors)")
    }

    /// The guest finishes the write it was in (or had finished), the disk holds all of it, and rng still answers.
    private func expectWriteCompletes(_ process: GuestProcess, after offset: Int = 0) throws {
        let line = try process.waitForLine(containing: "BLK WRITE", after: offset, timeout: 120)
        #expect(TestKernel.field("status", in: line) == "ok", "\(line)")
        #expect(try process.command(Self.verify, expect: "BLK VERIFY", timeout: 120).hasSuffix("ok"))
        #expect(try process.command("rng 1 256", expect: "RNG ").contains("bytes=256"))
    }

    @Test func aWriteCutBySnapshotFinishesAfterEveryKindOfRestore() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--disk", disk, "--rng", "on", "--api-socket", socket])
        defer { source.stop() }
        source.send(Self.write + "\r")
        try ctl(socket, "pause")
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")
        // The disk as it was at the snapshot: what each restored guest continues from.
        let atSnapshot = try Data(contentsOf: URL(fileURLWithPath: disk))
        source.kill()
        for mode in ["map", "copy", "lazy"] {
            let copy = directory.path("disk-\(mode).img")
            try atSnapshot.write(to: URL(fileURLWithPath: copy))
            let restored = try GuestProcess.engram(["restore", snapshot, "--memory", mode, "--disk", copy])
            defer { restored.stop() }
            try expectWriteCompletes(restored)
            #expect(try Data(contentsOf: URL(fileURLWithPath: disk)) == atSnapshot, "\(mode): the original disk is untouched")
        }
    }

    /// KVM's dirty log holds only what the guest's CPUs wrote. A disk read lands in guest memory
    /// by the device's hand, so a diff must hold those pages too, or the restored chain shows
    /// the buffer's old bytes: the merged chain equals a full snapshot of the same instant.
    @Test func aDiffHoldsThePagesADeviceWrote() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--disk", disk, "--api-socket", socket])
        defer { process.stop() }
        #expect(try process.command("blk 0 write 0 2048 9", expect: "BLK WRITE").contains("status=ok"))
        let base = directory.path("base.snap"), diff = directory.path("diff.snap"), full = directory.path("full.snap")
        #expect(try runEngram(["snapshot", socket, base]).status == 0)
        // New bytes in the image behind the guest's back, so the read changes its buffer.
        let handle = try #require(FileHandle(forWritingAtPath: disk))
        var generator = SystemRandomNumberGenerator()
        try handle.write(contentsOf: Data((0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        try handle.synchronize()
        try handle.close()
        #expect(try process.command("blk 0 read 0 2048", expect: "BLK READ").contains("status=ok"))
        try ctl(socket, "pause")
        let diffResult = try runEngram(["snapshot", socket, diff, "--diff", "--stay-paused"])
        #expect(diffResult.status == 0, "\(diffResult.errors)")
        #expect(try runEngram(["snapshot", socket, full, "--stay-paused"]).status == 0)
        let compared = try runEngram(["mem", "diff", diff, full])
        #expect(compared.status == 0, "the chain misses pages the device wrote: \(compared.output)")
    }

    @Test func aRestoreRefusesADiskOfAnotherSize() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--disk", disk, "--api-socket", socket])
        defer { source.stop() }
        #expect(try runEngram(["snapshot", socket, snapshot]).status == 0)
        let small = directory.path("small.img")
        FileManager.default.createFile(atPath: small, contents: Data(count: 4096))
        let result = try runEngram(["restore", snapshot, "--disk", small])
        #expect(result.status != 0)
        #expect(result.errors.contains("disk \(small): holds 4096 bytes; the saved guest's disk blk0 had \(Self.sectors * 512) bytes"), "\(result.errors)")
        let missing = try runEngram(["restore", snapshot, "--disk", directory.path("none.img")])
        #expect(missing.status != 0 && missing.errors.contains("no such file"), "\(missing.errors)")
    }

    /// The image stays open across exec: renamed just before the update, it is still the one served.
    @Test func aWriteCutByLiveUpdateFinishesOnTheSameOpenImage() throws {
        let disk = try makeDisk("disk.img")
        let socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--disk", disk, "--rng", "on", "--api-socket", socket])
        defer { process.stop() }
        let offset = process.consoleText.utf8.count
        process.send(Self.write + "\r")
        let moved = directory.path("moved.img")
        try FileManager.default.moveItem(atPath: disk, toPath: moved)
        let result = try runEngram(["update", socket])
        #expect(result.status == 0, "\(result.errors)")
        try expectWriteCompletes(process, after: offset)
        #expect(!FileManager.default.fileExists(atPath: disk), "nothing reopened the old path")
        #expect(try Data.read(moved, offset: 0, count: 4096) != Data(count: 4096), "the guest's data is in the image it had open")
    }

    @Test(.enabled(if: NetworkNamespacePair.available, "needs ip netns"))
    func aWriteCutByMigrationFinishesOnTheDestination() throws {
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let disk = try makeDisk("disk.img")
        let (source, socket) = try pair.source("src", extra: ["--disk", disk, "--rng", "on"])
        let (destination, url) = try pair.receive(extra: ["--disk-dir", directory.url.path])
        source.send(Self.write + "\r")
        let migration = try pair.migrate(socket, to: url, mode: "precopy")
        #expect(migration.status == 0, "\(migration.errors)")
        try expectWriteCompletes(destination)
    }
}

/// vsock across a snapshot: the guest's listener survives a restore, connections that were open
/// are reset (the host ends stayed with the old VMM), and a clone takes its own socket.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VsockStateTests {
    let directory = TemporaryDirectory()

    private func connect(_ path: String, port: UInt32) throws -> (StreamSocket, String?) {
        let client = try StreamSocket.connect(unixPath: path)
        client.setReceiveTimeout(milliseconds: 10_000)
        try client.send(Array("CONNECT \(port)\n".utf8))
        return (client, try VirtioVsockTests.readLine(client))
    }

    @Test func aListenerSurvivesRestoreAndOpenConnectionsAreReset() throws {
        let original = directory.path("v.sock"), clone = directory.path("clone.sock")
        let socket = directory.path("vm.sock"), snapshot = directory.path("vm.snap")
        let (source, _) = try TestKernel.boot(extra: ["--vsock", "3,\(original)", "--api-socket", socket])
        defer { source.stop() }
        _ = try source.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let (open, answer) = try connect(original, port: 5000)
        #expect(answer?.hasPrefix("OK ") == true, "\(answer ?? "nil")")
        let bytes = VirtioVsockTests.pattern(4096, seed: 1)
        #expect(try VirtioVsockTests.echo(open, bytes) == bytes)
        let taken = try runEngram(["snapshot", socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")

        // The original still runs and owns its socket: the clone must take another.
        let refused = try runEngram(["restore", snapshot], timeout: 30)
        #expect(refused.status != 0 && refused.errors.contains("another process listens on it"), "\(refused.errors)")
        let restored = try GuestProcess.engram(["restore", snapshot, "--vsock", "3,\(clone)"])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "restored")
        let (fresh, freshAnswer) = try connect(clone, port: 5000)
        #expect(freshAnswer?.hasPrefix("OK ") == true, "the guest's listener survived: \(freshAnswer ?? "nil")")
        let more = VirtioVsockTests.pattern(65536, seed: 2)
        #expect(try VirtioVsockTests.echo(fresh, more) == more)
        let stats = try restored.command("vsock stats", expect: "VSOCK STATS")
        #expect(TestKernel.field("transport_resets", in: stats) == "1", "\(stats)")
        // The original's connection is untouched by the clone.
        #expect(try VirtioVsockTests.echo(open, bytes) == bytes)
    }
}

/// vsock across a live update: the device's host side (listener, streams, connection table) is
/// kept across exec, so open streams carry on with every byte delivered once and in order, no
/// transport reset reaches the guest, and no client is refused meanwhile.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VsockLiveUpdateTests {
    let directory = TemporaryDirectory()

    private func connect(_ path: String, port: UInt32) throws -> (StreamSocket, String?) {
        let client = try StreamSocket.connect(unixPath: path)
        client.setReceiveTimeout(milliseconds: 20_000)
        try client.send(Array("CONNECT \(port)\n".utf8))
        return (client, try VirtioVsockTests.readLine(client))
    }

    /// A host client streams a pattern through the guest's echo listener while the VMM is
    /// replaced; the reader stops reading around the update, so bytes wait in the VMM's buffers
    /// and the sockets as the old process execs. Every byte comes back once, in order, and the
    /// same connection then echoes more.
    @Test func aHostStreamOpenDuringALiveUpdateLosesNoByte() throws {
        let path = directory.path("v.sock"), socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--vsock", "3,\(path)", "--api-socket", socket])
        defer { process.stop() }
        _ = try process.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let (client, answer) = try connect(path, port: 5000)
        #expect(answer?.hasPrefix("OK ") == true, "\(answer ?? "nil")")
        let total = 16 << 20
        let pattern = VirtioVsockTests.pattern(total, seed: 77)
        let writer = Thread {
            var sent = 0
            while sent < total {
                let count = min(64 << 10, total - sent)
                guard (try? client.send(Array(pattern[sent..<sent + count]))) != nil else { return }
                sent += count
            }
        }
        writer.start()
        var received = [UInt8](repeating: 0, count: total)
        var count = 0
        func read(until limit: Int) throws {
            while count < limit { count += try client.receive(into: &received, at: count, count: min(65536, limit - count)) }
        }
        try read(until: 2 << 20)
        #expect(received[0..<count] == pattern[0..<count])

        // Clients that connect while the update runs wait in the kept listener's backlog.
        let updating = Atomic<Bool>(true)
        let refusals = Locked<[String]>([])
        let answered = Atomic<Int>(0)
        let prober = Thread {
            var attempts = 0
            while updating.load(ordering: .relaxed), attempts < 6 {
                attempts += 1
                do {
                    let (probe, line) = try connect(path, port: 5000)
                    if line?.hasPrefix("OK ") == true { answered.add(1, ordering: .relaxed) } else { refusals.withLock { $0.append("answer \(line ?? "nil")") } }
                    probe.shutdown()
                } catch { refusals.withLock { $0.append("\(error)") } }
                usleep(50_000)
            }
        }
        prober.start()
        let update = try runEngram(["update", socket])
        updating.store(false, ordering: .relaxed)
        #expect(update.status == 0, "\(update.errors)")
        try read(until: total)
        #expect(received == pattern, "every byte once and in order")
        while !prober.isFinished { usleep(10_000) }
        #expect(refusals.withLock { $0 } == [], "no client refused during the update")
        #expect(answered.load(ordering: .relaxed) > 0)

        let more = VirtioVsockTests.pattern(256 << 10, seed: 78)
        #expect(try VirtioVsockTests.echo(client, more) == more, "the same connection carries on")
        let stats = try process.command("vsock stats", expect: "VSOCK STATS")
        #expect(TestKernel.field("transport_resets", in: stats) == "0", "\(stats)")
        _ = try process.waitForErrorLine(containing: "updated to")
    }

    /// The guest's own connection to a host listener at PATH_6000: the host holds its echo back
    /// from the first MiB until the update is over, so the stream is mid-way when the VMM is
    /// replaced; the guest still gets every byte back.
    @Test func aGuestConnectionOpenDuringALiveUpdateLosesNoByte() throws {
        let path = directory.path("v.sock"), socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--vsock", "3,\(path)", "--api-socket", socket])
        defer { process.stop() }
        let listener = try UnixStreamListener(path: path + "_6000")
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let server = Thread {
            var stream: NonBlockingStream?
            let deadline = Date().addingTimeInterval(120)
            while stream == nil, Date() < deadline {
                stream = listener.accept()
                if stream == nil { _ = Poll.isReadable(listener.rawValue, milliseconds: 100) }
            }
            guard let stream else { return }
            var held = false, released = false
            Self.echo(stream, deadline: deadline, hold: { echoed in
                if !held, echoed >= 1 << 20 { held = true; holding.signal() }
                if held, !released { released = release.wait(timeout: .now()) == .success }
                return held && !released
            })
        }
        server.start()
        let bytes = 32 << 20
        let offset = process.consoleText.utf8.count
        process.send("vsock connect 6000 \(bytes) 12\r")
        #expect(holding.wait(timeout: .now() + 60) == .success, "the guest's stream reached the host")
        let update = try runEngram(["update", socket])
        release.signal()
        #expect(update.status == 0, "\(update.errors)")
        let line = try process.waitForLine(containing: "VSOCK ECHO", after: offset, timeout: 120)
        // On a failure, what the device and the guest counted (this test has failed twice under a
        // full parallel run, never alone: "reset" is an RST or a used entry the guest did not expect).
        let why = TestKernel.field("status", in: line) == "ok" ? "" :
            " device: \(try runEngram(["ctl", socket, "get", "/vm"]).output) guest: \(try process.command("vsock stats", expect: "VSOCK STATS"))"
            + " console: \(String(process.consoleText.utf8.dropFirst(offset)) ?? "")"
        #expect(TestKernel.field("status", in: line) == "ok", "\(line)\(why)")
        #expect(TestKernel.field("bytes", in: line) == "\(bytes)")
        #expect(TestKernel.field("digest", in: line).flatMap { UInt64($0, radix: 16) } == VirtioVsockTests.fnv1a(VirtioVsockTests.pattern(bytes, seed: 12)))
        let stats = try process.command("vsock stats", expect: "VSOCK STATS")
        #expect(TestKernel.field("transport_resets", in: stats) == "0", "\(stats)")
        withExtendedLifetime(listener) {}
    }

    /// Live updates at arbitrary points of guest streams: each round the guest sends a pattern to a
    /// host echo at PATH_6000 while the VMM is replaced twice, and gets every byte back. (Under
    /// load this once lost the test kernel's return from ring 3 about once in 80 updates: a state
    /// save on PVM drops an int3's #BP, README "Where this was tested".)
    @Test func updatesAtArbitraryPointsOfGuestStreamsLoseNoByte() throws {
        let path = directory.path("v.sock"), socket = directory.path("vm.sock")
        let (process, _) = try TestKernel.boot(extra: ["--vsock", "3,\(path)", "--api-socket", socket])
        defer { process.stop() }
        let listener = try UnixStreamListener(path: path + "_6000")
        let done = Atomic<Bool>(false)
        let server = Thread {
            while !done.load(ordering: .relaxed) {
                guard let stream = listener.accept() else { _ = Poll.isReadable(listener.rawValue, milliseconds: 50); continue }
                Self.echo(stream, stop: { done.load(ordering: .relaxed) })
            }
        }
        server.start()
        defer { done.store(true, ordering: .relaxed); while !server.isFinished { usleep(10_000) } }
        let bytes = 8 << 20
        for round in 1...4 {
            let offset = process.consoleText.utf8.count
            process.send("vsock connect 6000 \(bytes) \(round)\r")
            for _ in 1...2 {
                usleep(UInt32.random(in: 10_000...120_000))
                let update = try runEngram(["update", socket])
                #expect(update.status == 0, "\(update.errors)")
            }
            let line = try process.waitForLine(containing: "VSOCK ECHO", after: offset, timeout: 120)
            #expect(TestKernel.field("status", in: line) == "ok", "round \(round): \(String(process.consoleText.utf8.dropFirst(offset)) ?? "")")
            #expect(TestKernel.field("digest", in: line).flatMap { UInt64($0, radix: 16) }
                == VirtioVsockTests.fnv1a(VirtioVsockTests.pattern(bytes, seed: UInt64(round))))
        }
        withExtendedLifetime(listener) {}
    }

    /// Echoes what `stream` receives until its peer is done with it, `deadline` passes or `stop`
    /// says so, holding the echo back while `hold(bytes echoed so far)` says so.
    private static func echo(
        _ stream: NonBlockingStream, deadline: Date = .distantFuture, stop: () -> Bool = { false }, hold: (Int) -> Bool = { _ in false }
    ) {
        var pending: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 65536), ended = false, echoed = 0
        while Date() < deadline, !stop(), !(ended && pending.isEmpty) {
            var moved = false
            if !ended {
                switch stream.receive(into: &buffer, at: 0, count: buffer.count) {
                case .moved(let count): pending += buffer[0..<count]; moved = true
                case .wouldBlock: break
                case .closed, .failed: ended = true
                }
            }
            if !pending.isEmpty, !hold(echoed) {
                switch stream.send(pending, from: 0, count: min(pending.count, 65536)) {
                case .moved(let count): pending.removeFirst(count); echoed += count; moved = true
                case .wouldBlock: break
                case .closed, .failed: return
                }
            }
            if !moved { _ = Poll.isReadable(stream.rawValue, milliseconds: 5) }
        }
    }
}

import Foundation
import SnapshotFormat
import Testing
import TestSupport

/// Live fork: children start from the parent's memory at the fork (same digest), then each one's
/// writes stay its own; a child is a VM like any other; requests that cannot be met are refused
/// in one line and the parent runs on.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct ForkTests {
    private let directory = TemporaryDirectory()

    private func fork(_ socket: String, _ arguments: [String] = []) throws -> [String: Any] {
        let answer = try runEngram(["fork", socket] + arguments)
        #expect(answer.status == 0, "engram fork: \(answer.errors)")
        return (try? JSONSerialization.jsonObject(with: Data(answer.output.utf8))) as? [String: Any] ?? [:]
    }

    /// Types `line` and Enter on a child's keyboard (a few keys per request: the guest's i8042 holds 16 bytes).
    private func type(_ socket: String, _ line: String) throws {
        let keys = line.unicodeScalars.map { UInt32($0.value) } + [0xff0d]
        for start in stride(from: 0, to: keys.count, by: 4) {
            let events = keys[start..<min(start + 4, keys.count)].flatMap { [#"{"keysym":\#($0),"down":true}"#, #"{"keysym":\#($0),"down":false}"#] }
            let answer = try runEngram(["ctl", socket, "put", "/vm/keyboard", "--data", #"{"events":[\#(events.joined(separator: ","))]}"#])
            #expect(answer.status == 0, "\(answer.errors)")
            usleep(30_000)
        }
    }

    /// Runs `line` on a child and returns the first console line after it containing `expect`.
    private func command(_ child: (socket: String, log: String), _ line: String, expect: String) throws -> String {
        let offset = (try? Data(contentsOf: URL(fileURLWithPath: child.log)).count) ?? 0
        try type(child.socket, line)
        for _ in 0..<600 {
            let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: child.log)))?.dropFirst(offset) ?? Data(), as: UTF8.self)
            // Complete lines only (CRLF-terminated): all but what follows the last terminator.
            if let found = text.components(separatedBy: "\r\n").dropLast().first(where: { $0.contains(expect) }) {
                return found.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            usleep(50_000)
        }
        throw GuestProcess.Timeout(description: "no \(expect) in \(child.log) after `\(line)`")
    }

    private func children(_ answer: [String: Any]) -> [(socket: String, log: String, pid: Int32)] {
        ((answer["children"] as? [[String: Any]]) ?? []).compactMap { child in
            guard let socket = child["api_socket"] as? String, let log = child["console_log"] as? String, let pid = child["pid"] as? Int else { return nil }
            return (socket, log, Int32(pid))
        }
    }

    private func end(_ pids: [Int32]) {
        for pid in pids { kill(pid, SIGKILL) }
    }

    @Test func childrenStartFromTheParentsMemoryAndDivergeAlone() throws {
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(memory: "512M", extra: ["--api-socket", socket])
        defer { parent.stop() }
        let filled = try #require(TestKernel.field("digest", in: try parent.command("fill 64 7", expect: "FILL ")))
        let parentGeneration = try parent.command("genid", expect: "GENID ")
        let answer = try fork(socket, ["--count", "2"])
        let forked = children(answer)
        defer { end(forked.map(\.pid)) }
        #expect(answer["started"] as? Int == 2 && forked.count == 2, "\(answer)")
        #expect((answer["paused_milliseconds"] as? Double ?? 0) > 0)
        var generations: Set<String> = []
        for child in forked {
            #expect(TestKernel.field("digest", in: try command((child.socket, child.log), "digest", expect: "DIGEST ")) == filled)
            // Each child is a new generation of the VM (ACPI VMGenID), told by the event device's interrupt.
            let generation = try command((child.socket, child.log), "genid", expect: "GENID ")
            #expect(TestKernel.field("events", in: generation) == "1", "\(generation)")
            generations.insert(try #require(TestKernel.field("id", in: generation)))
        }
        #expect(try parent.command("genid", expect: "GENID ") == parentGeneration, "the parent keeps its generation")
        generations.insert(try #require(TestKernel.field("id", in: parentGeneration)))
        #expect(generations.count == 3, "parent and children hold three generation IDs: \(generations)")
        // Child 1 writes; child 0 and the parent still hold what they had.
        let child1 = try command((forked[1].socket, forked[1].log), "fill 32 9", expect: "FILL ")
        #expect(TestKernel.field("digest", in: child1) != filled)
        #expect(TestKernel.field("digest", in: try command((forked[0].socket, forked[0].log), "digest", expect: "DIGEST ")) == filled)
        #expect(TestKernel.field("digest", in: try parent.command("digest", expect: "DIGEST ")) == filled)
        // The parent writes; the children do not see it.
        _ = try parent.command("fill 64 5", expect: "FILL ")
        #expect(TestKernel.field("digest", in: try command((forked[0].socket, forked[0].log), "digest", expect: "DIGEST ")) == filled)
        // Both report their memory as copy-on-write over the fork's base.
        for vm in [socket, forked[0].socket] {
            let memory = try runEngram(["ctl", vm, "memory"])
            #expect(memory.output.contains("\"backing\" : \"fork-private\"") || memory.output.contains("\"backing\": \"fork-private\""), "\(memory.output)")
            #expect(memory.output.contains("fork_base"))
        }
        // A forked VM cannot fork again (its memory is already private over a base).
        let again = try runEngram(["fork", socket, "--count", "1", "--api-socket-prefix", directory.path("again")])
        #expect(again.status != 0 && again.errors.contains("snapshot"), "\(again.errors)")
        #expect(TestKernel.field("digest", in: try parent.command("digest", expect: "DIGEST ")) != filled)
    }

    @Test func aChildIsSnapshottedAndRestoredLikeAnyVM() throws {
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(memory: "256M", extra: ["--api-socket", socket])
        defer { parent.stop() }
        _ = try parent.command("fill 32 3", expect: "FILL ")
        let forked = children(try fork(socket, ["--count", "1"]))
        defer { end(forked.map(\.pid)) }
        let child = try #require(forked.first)
        let digest = try command((child.socket, child.log), "fill 16 4", expect: "FILL ")
        let snapshot = directory.path("child.snap")
        let taken = try runEngram(["snapshot", child.socket, snapshot])
        #expect(taken.status == 0, "\(taken.errors)")
        let restored = try GuestProcess.engram(["restore", snapshot, "--memory", "copy"])
        defer { restored.stop() }
        #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) == TestKernel.field("digest", in: digest))
    }

    /// With a base snapshot, the frozen base is written as a full snapshot that the parent and
    /// every child build their diffs on: a child's diff holds only its own pages, and base plus
    /// diff restore to the child's memory.
    @Test func aChildsDiffAgainstTheForksBaseHoldsOnlyItsOwnPages() throws {
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(memory: "256M", extra: ["--api-socket", socket])
        defer { parent.stop() }
        _ = try parent.command("fill 64 3", expect: "FILL ")
        let base = directory.path("base.snap")
        let answer = try fork(socket, ["--count", "1", "--base-snapshot", base])
        let forked = children(answer)
        defer { end(forked.map(\.pid)) }
        #expect(answer["base_snapshot"] as? String == base && answer["base_snapshot_error"] == nil, "\(answer)")
        let child = try #require(forked.first)
        let digest = try command((child.socket, child.log), "fill 8 4", expect: "FILL ")
        let diff = directory.path("child.diff")
        let taken = try runEngram(["snapshot", child.socket, diff, "--diff"])
        #expect(taken.status == 0, "\(taken.errors)")
        let reader = try SnapshotReader(path: diff)
        #expect(reader.kind == .diff && reader.parentFileName == "base.snap")
        let childPages = try #require(reader.region(named: "ram")).bitmap.setCount
        let basePages = try #require(try SnapshotReader(path: base).region(named: "ram")).bitmap.setCount
        #expect(basePages >= 64 * 256, "the base holds the parent's 64 MiB: \(basePages) pages")
        #expect(childPages >= 8 * 256 && childPages < 16 * 256, "the child's diff holds its own 8 MiB and little else: \(childPages) pages")
        let restored = try GuestProcess.engram(["restore", diff, "--memory", "copy"])
        defer { restored.stop() }
        #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) == TestKernel.field("digest", in: digest))
        // The parent's own diff builds on the same base.
        _ = try parent.command("fill 4 5", expect: "FILL ")
        let parentDiff = directory.path("parent.diff")
        #expect(try runEngram(["snapshot", socket, parentDiff, "--diff"]).status == 0)
        #expect(try SnapshotReader(path: parentDiff).parentFileName == "base.snap")
        // A base path that exists already is refused before anything forks.
        let again = try runEngram(["fork", socket, "--count", "1", "--base-snapshot", base])
        #expect(again.status != 0 && again.errors.contains("exists already"), "\(again.errors)")
    }

    /// Children reserved ahead map the memory and make their VMs while the guest runs; the next
    /// fork hands them the machine first (memory written after the reserve included) and starts
    /// the rest as usual.
    @Test func reservedChildrenAreTheNextForksFirstChildren() throws {
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(memory: "256M", extra: ["--api-socket", socket])
        defer { parent.stop() }
        _ = try parent.command("fill 16 3", expect: "FILL ")
        let reserve = try runEngram(["fork", socket, "--reserve", "2"])
        #expect(reserve.status == 0, "\(reserve.errors)")
        let reserved = (try? JSONSerialization.jsonObject(with: Data(reserve.output.utf8))) as? [String: Any] ?? [:]
        let pids = (reserved["pids"] as? [Int] ?? []).map(Int32.init)
        defer { end(pids) }
        #expect(reserved["reserved"] as? Int == 2 && pids.count == 2, "\(reserved)")
        let filled = try #require(TestKernel.field("digest", in: try parent.command("fill 32 4", expect: "FILL ")))
        let answer = try fork(socket, ["--count", "3"])
        let forked = children(answer)
        defer { end(forked.map(\.pid)) }
        #expect(answer["started"] as? Int == 3, "\(answer)")
        #expect(forked.prefix(2).map(\.pid) == pids, "the reserved processes are children 0 and 1")
        for child in forked {
            #expect(TestKernel.field("digest", in: try command((child.socket, child.log), "digest", expect: "DIGEST ")) == filled)
        }
        let bad = try runEngram(["fork", socket, "--reserve", "0"])
        #expect(bad.status != 0 && bad.errors.contains("count must be"), "\(bad.errors)")
    }

    @Test func whatCannotForkIsRefusedAndTheParentRunsOn() throws {
        let disk = directory.path("disk.img")
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(extra: ["--api-socket", socket, "--disk", disk])
        defer { parent.stop() }
        let writable = try runEngram(["fork", socket, "--count", "1"])
        #expect(writable.status != 0 && writable.errors.contains("is writable"), "\(writable.errors)")
        let zero = try runEngram(["fork", socket, "--count", "0"])
        #expect(zero.status != 0 && zero.errors.contains("count must be"), "\(zero.errors)")
        // A child that cannot start (its disk does not exist) is reported; with --end-on-failure the others end.
        let copy = directory.path("disk0.img")
        try FileManager.default.copyItem(atPath: disk, toPath: copy)
        let answer = try fork(socket, ["--count", "2", "--child-disk", "0:\(copy)", "--child-disk", "1:/nonexistent/disk.img", "--end-on-failure"])
        let reported = (answer["children"] as? [[String: Any]]) ?? []
        end(reported.compactMap { ($0["pid"] as? Int).map(Int32.init) })
        #expect(reported.count == 2 && answer["started"] as? Int == 0, "\(answer)")
        #expect(reported.last?["status"] as? String == "failed" && (reported.last?["error"] as? String ?? "").contains("/nonexistent/disk.img"), "\(answer)")
        #expect(reported.first?["status"] as? String == "ended", "\(answer)")
        _ = try parent.command("fill 8 1", expect: "FILL ")
        let anonymous = directory.path("anon.sock")
        let (other, _) = try TestKernel.boot(extra: ["--api-socket", anonymous, "--anonymous-memory"])
        defer { other.stop() }
        let refused = try runEngram(["fork", anonymous, "--count", "1"])
        #expect(refused.status != 0 && refused.errors.contains("cannot be frozen"), "\(refused.errors)")
        _ = try other.command("fill 8 1", expect: "FILL ")
    }

    @Test func aChildGetsAVsockOfItsOwnAndItsGuestSeesTheNewCID() throws {
        let socket = directory.path("vm.sock"), vsock = directory.path("v.sock")
        let (parent, _) = try TestKernel.boot(extra: ["--api-socket", socket, "--vsock", "3,\(vsock)"])
        defer { parent.stop() }
        _ = try parent.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let forked = children(try fork(socket, ["--count", "2", "--child-vsock", "1:40,\(directory.path("own.sock"))"]))
        defer { end(forked.map(\.pid)) }
        #expect(forked.count == 2)
        let expected: [(UInt64, String)] = [(4, "\(vsock)-fork-0"), (40, directory.path("own.sock"))]
        for (child, (cid, path)) in zip(forked, expected) {
            let devices = try runEngram(["ctl", child.socket, "devices"]).output
            #expect(devices.contains("\"guest_cid\" : \(cid)") || devices.contains("\"guest_cid\": \(cid)"), "\(devices)")
            #expect(FileManager.default.fileExists(atPath: path), "child's vsock socket \(path)")
            // The guest re-read its CID at the transport reset the restored device sent.
            #expect(try command((child.socket, child.log), "vsock cid", expect: "VSOCK CID").hasSuffix("cid=\(cid)"))
        }
        #expect(try parent.command("vsock cid", expect: "VSOCK CID").hasSuffix("cid=3"))
    }

    @Test(.enabled(if: NetworkNamespacePair.available, "needs ip netns"))
    func aChildMigratesLikeAnyVM() throws {
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let (source, socket) = try pair.source("src")
        let filled = try #require(TestKernel.field("digest", in: try source.command("fill 32 6", expect: "FILL ")))
        let forked = children(try fork(socket, ["--count", "1"]))
        defer { end(forked.map(\.pid)) }
        let child = try #require(forked.first)
        let written = try command((child.socket, child.log), "fill 16 2", expect: "FILL ")
        let (destination, url) = try pair.receive()
        let migration = try pair.migrate(child.socket, to: url, mode: "precopy")
        #expect(migration.status == 0, "\(migration.errors)")
        #expect(TestKernel.field("digest", in: try destination.command("digest", expect: "DIGEST ")) == TestKernel.field("digest", in: written))
        #expect(TestKernel.field("digest", in: try source.command("digest", expect: "DIGEST ")) == filled)
    }

    @Test func aHundredForksOfAGibibyteGuestRunAtOnce() throws {
        let socket = directory.path("vm.sock")
        let (parent, _) = try TestKernel.boot(memory: "1G", extra: ["--api-socket", socket, "--rng", "on"])
        defer { parent.stop() }
        let filled = try #require(TestKernel.field("digest", in: try parent.command("fill 64 8", expect: "FILL ")))
        // Should the answer not name them, its children are still found and ended.
        defer { ProcessSweep.kill(commandContaining: "fork-child", holdingFilesUnder: directory.url.path) }
        let answer = try fork(socket, ["--count", "100"])
        let forked = children(answer)
        defer { end(forked.map(\.pid)) }
        #expect(answer["started"] as? Int == 100 && forked.count == 100, "\((answer["children"] as? [[String: Any]])?.first { $0["status"] as? String != "running" } ?? [:])")
        for pid in forked.map(\.pid) { #expect(kill(pid, 0) == 0, "child \(pid) runs") }
        for index in [0, 99] where index < forked.count {
            let child = (forked[index].socket, forked[index].log)
            #expect(TestKernel.field("digest", in: try command(child, "digest", expect: "DIGEST ")) == filled)
            // Each child's entropy device draws from the host on its own.
            #expect(try command(child, "rng 0 64", expect: "RNG ").contains("bytes=64"))
        }
        let digests = try [0, 99].filter { $0 < forked.count }.map { index in
            TestKernel.field("digest", in: try command((forked[index].socket, forked[index].log), "rng 0 64", expect: "RNG "))
        }
        #expect(Set(digests).count == digests.count, "two children drew the same random bytes: \(digests)")
    }
}


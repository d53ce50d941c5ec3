import Foundation
import Testing
import TestSupport

/// `engram serve` and `engram restore tcp://`: the test kernel restored from a page server, over
/// loopback and between two network namespaces, with working sets, a server that dies and
/// comes back, many clients, and clients that do not know the secret.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct PageServerTests {
    let directory = TemporaryDirectory()

    /// A secret file (mode 0600) both ends are given.
    func secretFile(_ name: String = "secret") throws -> String {
        let path = directory.path(name)
        let text = (0..<32).map { _ in String(UInt8.random(in: 0...255), radix: 16) }.joined()
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// A paused guest's snapshot after `fill MiB seed`; returns the digest it reported.
    func snapshot(_ name: String, memory: String = "256M", fill: Int = 24, seed: Int = 5) throws -> (path: String, digest: String) {
        let path = directory.path(name)
        let socket = directory.path(name + ".sock")
        let (process, _) = try TestKernel.boot(memory: memory, extra: ["--api-socket", socket])
        defer { process.stop() }
        let line = try process.command("fill \(fill) \(seed)", expect: "FILL ")
        let digest = try #require(TestKernel.field("digest", in: line))
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        #expect(result.status == 0, "\(result.errors)")
        return (path, digest)
    }

    /// Starts `engram serve` (inside `namespace` if given); returns it and the port it listens on.
    func serve(_ snapshot: String, secret: String, listen: String = "127.0.0.1:0", in namespace: (NetworkNamespacePair, String)? = nil) throws -> (GuestProcess, Int) {
        let arguments = ["serve", snapshot, "--listen", listen, "--secret-file", secret]
        let process: GuestProcess
        if let (pair, name) = namespace {
            let (executable, wrapped) = pair.command(in: name, ProjectPaths.engram, arguments)
            process = try GuestProcess(executable: executable, arguments: wrapped)
        } else {
            process = try GuestProcess.engram(arguments)
        }
        let line = try process.waitForErrorLine(containing: "serving ")
        // "serving PATH on HOST:PORT (fingerprint ...)"
        let address = line.components(separatedBy: " on ").last?.split(separator: " ").first ?? ""
        let port = try #require(Int(address.split(separator: ":").last ?? ""), "\(line)")
        return (process, port)
    }

    func restore(_ url: String, secret: String, memory: String = "lazy", extra: [String] = [], in namespace: (NetworkNamespacePair, String)? = nil) throws -> GuestProcess {
        let arguments = ["restore", url, "--memory", memory, "--secret-file", secret] + extra
        if let (pair, name) = namespace {
            let (executable, wrapped) = pair.command(in: name, ProjectPaths.engram, arguments)
            return try GuestProcess(executable: executable, arguments: wrapped)
        }
        return try GuestProcess.engram(arguments)
    }

    func lazyStatistics(_ socket: String) throws -> [String: Any] {
        let object = try RestoreTests.memoryStatistics(socket) { ($0["lazy"] as? [String: Any])?["complete"] as? Bool == true }
        return try #require(object["lazy"] as? [String: Any])
    }

    @Test(arguments: ["lazy", "copy"])
    func restoreOverLoopbackFetchesEachPageOnce(memory: String) throws {
        let secret = try secretFile()
        let (path, digest) = try snapshot("loop-\(memory).snap")
        let (server, port) = try serve(path, secret: secret)
        defer { server.stop() }
        let socket = directory.path("loop-\(memory).api")
        let restored = try restore("tcp://127.0.0.1:\(port)", secret: secret, memory: memory, extra: ["--api-socket", socket])
        defer { restored.stop() }
        let line = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
        if memory == "lazy" {
            let lazy = try lazyStatistics(socket)
            let transfer = try #require(lazy["transfer"] as? [String: Any])
            let received = transfer["pages_received"] as? Int ?? -1
            let installed = ["demand_pages", "background_pages", "prefetch_pages"].map { lazy[$0] as? Int ?? 0 }.reduce(0, +)
            // Every page that crossed the wire was installed: none came twice.
            #expect(received > 24 * 256 && received <= installed, "\(lazy)")
            #expect(lazy["failure"] == nil)
            #expect((transfer["bytes_received"] as? Int ?? 0) >= received * 4096)
        }
        // The guest goes on working on its restored memory.
        _ = try restored.command("fill 4 9", expect: "FILL ")
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    @Test func workingSetIsRecordedThenPrefetched() throws {
        let secret = try secretFile()
        let (path, digest) = try snapshot("ws.snap")
        let (server, port) = try serve(path, secret: secret)
        defer { server.stop() }
        let url = "tcp://127.0.0.1:\(port)"

        // First restore: the guest's first seconds (a digest of what it filled) are recorded. The
        // window is long enough for the digest to finish inside it on a loaded machine (with 2 s
        // it sometimes did not, and the set missed part of the fill).
        let recordSocket = directory.path("record.api")
        let recording = try restore(url, secret: secret, extra: ["--record-working-set", "8", "--api-socket", recordSocket])
        let first = try recording.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: first) == digest)
        try recording.waitForErrorLine(containing: "recorded a working set of")
        let recorded = try lazyStatistics(recordSocket)
        recording.send("poweroff\r")
        #expect(try recording.waitForExit() == 0)
        let workingSet = path + ".workingset"
        #expect(FileManager.default.fileExists(atPath: workingSet))
        let mode = try FileManager.default.attributesOfItem(atPath: workingSet)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        // Second restore: the set arrives in one stream at resume, so the same work faults far less.
        let socket = directory.path("prefetch.api")
        let restored = try restore(url, secret: secret, extra: ["--api-socket", socket])
        defer { restored.stop() }
        let second = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: second) == digest)
        let lazy = try lazyStatistics(socket)
        let recordedPages = recorded["working_set_pages"] as? Int ?? 0
        #expect(recordedPages > 24 * 256, "\(recorded)")
        #expect(lazy["working_set_pages"] as? Int == recordedPages, "\(lazy)")
        #expect((lazy["prefetch_pages"] as? Int ?? 0) > 0, "\(lazy)")
        #expect((lazy["demand_faults"] as? Int ?? .max) < (recorded["demand_faults"] as? Int ?? 0), "\(lazy) vs \(recorded)")
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    @Test(.enabled(if: NetworkNamespacePair.available, "needs root and iproute2"))
    func restoreAcrossTwoNetworkNamespaces() throws {
        let secret = try secretFile()
        let (path, digest) = try snapshot("netns.snap")
        let pair = try NetworkNamespacePair()
        let (server, port) = try serve(path, secret: secret, listen: "\(pair.serverAddress):0", in: (pair, pair.server))
        defer { server.stop() }
        // Loopback of the client's namespace does not reach the server: only the veth does.
        let astray = try restore("tcp://127.0.0.1:\(port)", secret: secret, extra: ["--reconnect-timeout", "1"], in: (pair, pair.client))
        #expect(try astray.waitForExit() != 0)
        let restored = try restore("tcp://\(pair.serverAddress):\(port)", secret: secret, in: (pair, pair.client))
        defer { restored.stop() }
        let line = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    @Test func guestWaitsWhileTheServerIsDownAndGoesOnWithTheSameMemory() throws {
        let secret = try secretFile()
        let (path, digest) = try snapshot("death.snap")
        var (server, port) = try serve(path, secret: secret)
        // Recording holds the background fill back, so most memory is still on the server when it dies.
        let restored = try restore("tcp://127.0.0.1:\(port)", secret: secret, extra: ["--record-working-set", "60"])
        defer { restored.stop() }
        _ = try TestKernel.ticks(restored)
        server.kill()
        restored.send("digest\r")
        try restored.waitForErrorLine(containing: "lost")
        #expect(!restored.consoleText.contains("DIGEST "), "the guest went on without its memory")
        (server, port) = try serve(path, secret: secret, listen: "127.0.0.1:\(port)")
        defer { server.stop() }
        try restored.waitForErrorLine(containing: "is back after")
        let line = try restored.waitForLine(containing: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    @Test func serverWithAnotherSnapshotStopsTheGuest() throws {
        let secret = try secretFile()
        let (path, _) = try snapshot("one.snap")
        let (other, _) = try snapshot("other.snap", seed: 6)
        var (server, port) = try serve(path, secret: secret)
        let restored = try restore("tcp://127.0.0.1:\(port)", secret: secret, extra: ["--record-working-set", "60"])
        defer { restored.stop() }
        _ = try TestKernel.ticks(restored)
        server.kill()
        restored.send("digest\r")
        try restored.waitForErrorLine(containing: "lost")
        (server, port) = try serve(other, secret: secret, listen: "127.0.0.1:\(port)")
        defer { server.stop() }
        #expect(try restored.waitForExit() != 0)
        #expect(restored.errorText.contains("another snapshot"), "\(restored.errorText)")
        #expect(!restored.consoleText.contains("DIGEST "))
    }

    @Test func eightClientsRestoreAtOnce() throws {
        let secret = try secretFile()
        let (path, digest) = try snapshot("many.snap", memory: "64M", fill: 8)
        let (server, port) = try serve(path, secret: secret)
        defer { server.stop() }
        let clients = try (0..<8).map { _ in try restore("tcp://127.0.0.1:\(port)", secret: secret) }
        defer { clients.forEach { $0.stop() } }
        for client in clients {
            let line = try client.command("digest", expect: "DIGEST ", timeout: 120)
            #expect(TestKernel.field("digest", in: line) == digest)
        }
        for client in clients {
            client.send("poweroff\r")
            #expect(try client.waitForExit() == 0)
        }
    }

    @Test func clientsWithoutTheSecretGetNothing() throws {
        let secret = try secretFile()
        let wrong = try secretFile("wrong")
        let (path, digest) = try snapshot("auth.snap", memory: "64M", fill: 4)
        let (server, port) = try serve(path, secret: secret)
        defer { server.stop() }
        let refused = try runEngram(["restore", "tcp://127.0.0.1:\(port)", "--memory", "lazy", "--secret-file", wrong])
        #expect(refused.status != 0)
        #expect(refused.errors.contains("TLS") && refused.errors.contains("another secret"), "\(refused.errors)")
        #expect(refused.errors.split(separator: "\n").count <= 2, "\(refused.errors)")
        try server.waitForErrorLine(containing: "refused")
        // The server goes on serving clients that know the secret.
        let restored = try restore("tcp://127.0.0.1:\(port)", secret: secret)
        defer { restored.stop() }
        let line = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
    }

    @Test func certificatesInsteadOfASecretAndPlaintextPeersRefusedInOneLine() throws {
        let pki = try TestCertificates.make(in: directory.path("pki"))
        let (path, digest) = try snapshot("certificates.snap", memory: "64M", fill: 4)
        let server = try GuestProcess.engram(["serve", path, "--listen", "127.0.0.1:0"] + TestCertificates.options(pki, "server"))
        defer { server.stop() }
        let line = try server.waitForErrorLine(containing: "serving ")
        #expect(line.contains("TLS 1.3 (certificates)"), "\(line)")
        let port = try #require(Int(line.components(separatedBy: " on ").last?.split(separator: " ").first?.split(separator: ":").last ?? ""), "\(line)")
        let url = "tcp://127.0.0.1:\(port)"
        // A client whose certificate has expired, and one that speaks plaintext: each refused in one line.
        let expired = try runEngram(["restore", url, "--memory", "lazy"] + TestCertificates.options(pki, "expired"))
        #expect(expired.status != 0 && expired.errors.contains("TLS with 127.0.0.1"), "\(expired.errors)")
        try server.waitForErrorLine(containing: "certificate has expired")
        let plaintext = try runEngram(["restore", url, "--memory", "lazy", "--secret-file", try secretFile(), "--insecure-plaintext"])
        #expect(plaintext.status != 0 && plaintext.errors.contains("--insecure-plaintext"), "\(plaintext.errors)")
        #expect(plaintext.errors.contains("WARNING: --insecure-plaintext"), "\(plaintext.errors)")
        try server.waitForErrorLine(containing: "running with --insecure-plaintext?)")
        // The server goes on, and a client with a certificate the authority signed restores the guest.
        let restored = try GuestProcess.engram(["restore", url, "--memory", "lazy"] + TestCertificates.options(pki, "client"))
        defer { restored.stop() }
        let answer = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: answer) == digest)
    }

    @Test func badArgumentsAreRefusedInOneLine() throws {
        let secret = try secretFile()
        let loose = directory.path("loose")
        try Data("0123456789abcdef0123".utf8).write(to: URL(fileURLWithPath: loose))
        chmod(loose, 0o644)
        let cases: [([String], String)] = [
            (["restore", "tcp://127.0.0.1:1", "--memory", "map", "--secret-file", secret], "--memory map needs a local snapshot"),
            (["restore", "tcp://127.0.0.1:1", "--memory", "lazy"], "--secret-file"),
            (["restore", "tcp://127.0.0.1:1", "--memory", "lazy", "--secret-file", loose], "chmod 600"),
            (["restore", "tcp://nowhere", "--memory", "lazy", "--secret-file", secret], "HOST:PORT"),
            (["serve", directory.path("missing.snap"), "--listen", "127.0.0.1:0", "--secret-file", secret], "missing.snap"),
            (["restore", "tcp://127.0.0.1:1", "--memory", "copy", "--record-working-set", "2", "--secret-file", secret], "needs --memory lazy"),
        ]
        for (arguments, message) in cases {
            let result = try runEngram(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.errors.contains(message), "\(arguments): \(result.errors)")
        }
    }
}

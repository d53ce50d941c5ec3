import ControlAPI
import Foundation
import NIOCore
import Glibc
import LinuxSystem
import Synchronization
import Testing
import TestSupport

/// The server on a real Unix socket, with a fake machine behind it.
@Suite final class ControlServerTests {
    private let directory = TemporaryDirectory()
    private let fake = FakeVMControl()
    private let path: String
    private let server: ControlServer

    init() throws {
        path = directory.path("api.sock")
        server = ControlServer(socketPath: path, control: fake, version: "9.8.7")
        try server.start()
    }

    deinit { server.stop() }

    private var client: ControlClient { ControlClient(socketPath: path, timeoutSeconds: 20) }

    private func call(_ method: String, _ target: String, _ body: String? = nil) throws -> (status: Int, text: String) {
        let reply = try client.send(method: method, path: target, body: body.map { Array($0.utf8) })
        return (reply.status, String(decoding: reply.body, as: UTF8.self))
    }

    private func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(type, from: Data(text.utf8))
    }

    // MARK: routes

    @Test func version() throws {
        #expect(try call("GET", "/version") == (200, #"{"api":1,"engram":"9.8.7"}"#))
    }

    @Test func vmInfo() throws {
        let (status, text) = try call("GET", "/vm")
        #expect(status == 200)
        #expect(try decode(VMInfo.self, text) == VMInfo(state: "running", vcpus: 2, uptimeSeconds: 1.5, memorySizeInBytes: 512 << 20))
        #expect(text.contains(#""memory_size_in_bytes":536870912"#))
    }

    @Test func memoryRegions() throws {
        let (status, text) = try call("GET", "/vm/memory")
        #expect(status == 200)
        #expect(try decode(MemoryRegionList.self, text) == MemoryRegionList(regions: FakeVMControl.regions))
        #expect(text.contains(#""path":"/dev/shm/vm.ram""#))
        #expect(text.contains(#""guest_address":4244635648"#))
        #expect(fake.calls == ["memoryRegions"])
    }

    @Test func pauseAndResumeCallThrough() throws {
        #expect(try call("PUT", "/vm/pause") == (200, #"{"state":"paused"}"#))
        #expect(try call("PUT", "/vm/pause") == (409, #"{"error":"cannot pause: the VM is paused"}"#))
        #expect(try call("PUT", "/vm/resume") == (200, #"{"state":"running"}"#))
        #expect(try call("PUT", "/vm/resume") == (409, #"{"error":"cannot resume: the VM is running"}"#))
        #expect(fake.calls == ["pause", "vmInfo", "pause", "resume", "vmInfo", "resume"])
    }

    @Test func machineFailureIs500() throws {
        fake.failNext(with: .failed(operation: "pause", reason: "vCPU 1 did not stop"))
        #expect(try call("PUT", "/vm/pause") == (500, #"{"error":"pause failed: vCPU 1 did not stop"}"#))
    }

    @Test func unknownPathAndWrongMethod() throws {
        #expect(try call("GET", "/vm/nothing") == (404, #"{"error":"no such resource: /vm/nothing"}"#))
        #expect(try call("POST", "/vm/pause") == (405, #"{"error":"POST is not allowed on /vm/pause; use PUT"}"#))
        #expect(try call("GET", "/vm/pause").status == 405)
        #expect(fake.calls.isEmpty)
    }

    @Test func oversizeBodyIs413() throws {
        let body = "[" + String(repeating: "0,", count: ControlServer.maximumBodyBytes / 2) + "0]"
        #expect(try call("PUT", "/vm/pause", body) == (413, #"{"error":"request body is larger than 65536 bytes"}"#))
        // Chunked, with no Content-Length to check up front.
        let chunk = String(repeating: "x", count: 40_000)
        let chunked = "PUT /vm/pause HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "9c40\r\n\(chunk)\r\n9c40\r\n\(chunk)\r\n0\r\n\r\n"
        let reply = try RawConnection.exchange(path, Array(chunked.utf8))
        #expect(reply.hasPrefix("HTTP/1.1 413"))
        #expect(fake.calls.isEmpty)
    }

    @Test func expectContinue() throws {
        let accepted = try RawConnection.exchange(path, Array(
            "PUT /vm/pause HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".utf8))
        #expect(accepted.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
        #expect(accepted.hasSuffix(#"{"state":"paused"}"#))
        // Too large: refused at once, without waiting for a body the client holds back.
        let refused = try RawConnection.exchange(path, Array(
            "PUT /vm/resume HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n".utf8))
        #expect(refused.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
        #expect(fake.calls == ["pause", "vmInfo"])
    }

    @Test func invalidJSONBodyIs400() throws {
        let directory = TemporaryDirectory()
        var router = Router()
        router.add("PUT", "/vm/snapshot") { body in
            struct Snapshot: Decodable { var path: String }
            return try .json(["path": body.decode(Snapshot.self).path])
        }
        let server = ControlServer(socketPath: directory.path("s.sock"), router: router)
        try server.start()
        defer { server.stop() }
        let client = ControlClient(socketPath: directory.path("s.sock"))
        let bad = try client.send(method: "PUT", path: "/vm/snapshot", body: Array("{oops".utf8))
        #expect(bad.status == 400)
        #expect(String(decoding: bad.body, as: UTF8.self) == #"{"error":"invalid JSON body: not valid JSON"}"#)
        let good = try client.send(method: "PUT", path: "/vm/snapshot", body: Array(#"{"path": "/tmp/a"}"#.utf8))
        #expect(good.status == 200)
        #expect(String(decoding: good.body, as: UTF8.self) == #"{"path":"/tmp/a"}"#)
    }

    @Test func shutdownAnswersBeforeTheServerStops() throws {
        // The machine's main thread wakes at shutdown() and calls stop() at once: the answer must still arrive.
        let server = self.server, path = self.path
        fake.whenShutDown { [weak server] in if let server { Self.stopFromAnotherThread(server, path: path) } }
        #expect(try call("PUT", "/vm/shutdown") == (200, #"{"state":"stopping"}"#))
        for _ in 0..<200 where FileManager.default.fileExists(atPath: path) { Thread.sleep(forTimeInterval: 0.01) }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(throws: ControlClientError.socketMissing(path: path)) { try call("GET", "/vm") }
        server.stop()  // a second stop is harmless
    }

    /// The machine's main thread waking at shutdown() and calling stop(); in the worst case stop() has
    /// already begun (the socket is gone) before the handler returns and its answer is written.
    private static func stopFromAnotherThread(_ server: ControlServer, path: String) {
        Thread.detachNewThread { server.stop() }
        for _ in 0..<1000 where FileManager.default.fileExists(atPath: path) { Thread.sleep(forTimeInterval: 0.002) }
    }

    @Test func shutdownRaceRepeated() throws {
        for round in 0..<10 {
            let directory = TemporaryDirectory()
            let fake = FakeVMControl()
            let server = ControlServer(socketPath: directory.path("r.sock"), control: fake, version: "1")
            try server.start()
            let path = directory.path("r.sock")
            // Weakly: the fake outlives nothing, and a strong capture would make server → routes → fake → server a cycle.
            fake.whenShutDown { [weak server] in if let server { Self.stopFromAnotherThread(server, path: path) } }
            let reply = try ControlClient(socketPath: directory.path("r.sock")).send(method: "PUT", path: "/vm/shutdown")
            #expect(reply.status == 200, "round \(round)")
            server.stop()
        }
    }

    // MARK: HTTP robustness

    /// Connections that send nothing (or a request head that never ends) cannot keep a client
    /// out or use up descriptors: beyond the cap the oldest such connection makes room, and one
    /// silent for the idle time is closed. A request being answered is never cut.
    @Test func silentConnectionsCannotKeepAClientOut() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("limited.sock")
        let fake = FakeVMControl()
        let server = ControlServer(socketPath: path, control: fake, version: "1", limits: .init(maximumConnections: 8, idleSeconds: 3))
        try server.start()
        defer { server.stop() }
        var silent: [any Channel] = []
        defer { for channel in silent { channel.close(promise: nil) } }
        for index in 0..<40 { silent.append(try RawConnection.open(path, sending: index % 2 == 0 ? [] : Array("GET /vm HTTP/1.1\r\nHo".utf8))) }
        let started = Date()
        let reply = try ControlClient(socketPath: path, timeoutSeconds: 5).send(method: "GET", path: "/version")
        #expect(reply.status == 200)
        #expect(Date().timeIntervalSince(started) < 3, "the client got in at once, not after the idle time")
        // Counted on the server's side, where the descriptors are: the clients' own view of a close
        // waits for their event loop, which the rest of a parallel test run shares.
        func open() -> Int { server.openConnectionCount }
        func clientsOpen() -> Int { silent.filter(\.isActive).count }
        // Generous waits: under a sanitizer on a loaded host the closes come late, not never.
        func wait(until done: () -> Bool) { let deadline = Date().addingTimeInterval(60); while !done() && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) } }
        wait { open() <= 8 }
        #expect(open() <= 8, "at most the cap stays open: \(open()) of 41 connections (clients see \(clientsOpen()) of 40 silent ones open)")
        wait { open() == 0 }
        #expect(open() == 0, "the idle time closes the rest: \(open()) open (clients see \(clientsOpen()))")
        // A long answer is not an idle connection: a pause that takes longer than the idle time still answers.
        fake.pauseDelay.withLock { $0 = 3.5 }
        #expect(try ControlClient(socketPath: path, timeoutSeconds: 20).send(method: "PUT", path: "/vm/pause").status == 200)
    }

    /// A client that pipelines requests and never reads the answers is held: once its answers
    /// wait to be written, the server stops reading its requests (before, it read on and kept
    /// every answer in memory). Its sends then stay blocked; 16 MiB of requests never get out.
    @Test func aClientThatNeverReadsItsAnswersIsHeld() throws {
        let stream = try NonBlockingStream.connect(unixPath: path)
        let request = Array(String(repeating: "GET /version HTTP/1.1\r\nHost: x\r\n\r\n", count: 512).utf8)
        var sent = 0, offset = 0, held = false
        while sent < 16 << 20 {
            switch stream.send(request, from: offset, count: request.count - offset) {
            case .moved(let count):
                sent += count
                offset = (offset + count) % request.count
            case .wouldBlock:
                var entries = [pollfd(fd: stream.rawValue, events: Int16(POLLOUT), revents: 0)]
                if (try? Poll.wait(&entries, milliseconds: 3000)) == 0 { held = true }
            case .closed, .failed:
                held = true
            }
            if held { break }
        }
        #expect(held, "the server read \(sent) bytes of requests whose answers nobody read")
        #expect(sent < 8 << 20)
        #expect(try call("GET", "/vm").status == 200, "other clients are served meanwhile")
    }

    /// A request pipelined before garbage gets its answer, then the garbage its 400: the request
    /// never runs without its answer being written.
    @Test func aRequestPipelinedBeforeGarbageGetsItsAnswer() throws {
        let reply = try RawConnection.exchange(path, Array("PUT /vm/pause HTTP/1.1\r\nHost: x\r\n\r\n\u{1}\u{2}garbage\r\n\r\n".utf8))
        #expect(reply.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(reply)")
        #expect(reply.contains(#"{"state":"paused"}"#), "\(reply)")
        #expect(reply.contains("HTTP/1.1 400 Bad Request"), "\(reply)")
        #expect(fake.calls == ["pause", "vmInfo"])
    }

    @Test func garbageGets400AndTheServerGoesOn() throws {
        let reply = try RawConnection.exchange(path, Array("\u{1}\u{2}garbage\r\n\r\n".utf8))
        #expect(reply.hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
        #expect(reply.hasSuffix(#"{"error":"malformed HTTP request: invalidMethod"}"#) || reply.contains(#"{"error":"malformed HTTP request"#))
        let badVersion = try RawConnection.exchange(path, Array("GET /vm HTTP/9\r\n\r\n".utf8))
        #expect(badVersion.hasPrefix("HTTP/1.1 400"))
        #expect(try call("GET", "/vm").status == 200)
        #expect(fake.calls == ["vmInfo"])
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() throws {
        let requests = "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
            + "PUT /vm/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            + "GET /vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        let reply = try RawConnection.exchange(path, Array(requests.utf8))
        #expect(reply.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
        #expect(reply.contains("Connection: keep-alive"))
        #expect(reply.contains(#"{"state":"paused"}"#))
        #expect(reply.hasSuffix(#""state":"paused","uptime_seconds":1.5,"vcpus":2}"#))
    }

    @Test func halfClosingClientStillGetsItsAnswer() throws {
        let reply = try RawConnection.exchange(path, Array("GET /version HTTP/1.1\r\nHost: x\r\n\r\n".utf8), halfClose: true)
        #expect(reply.hasPrefix("HTTP/1.1 200 OK"))
        #expect(reply.hasSuffix(#"{"api":1,"engram":"9.8.7"}"#))
    }

    @Test func concurrentClients() throws {
        // One client holds a half-sent request open; others are still served, from several threads at once.
        let stuck = try RawConnection.open(path, sending: Array("PUT /vm/pause HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{".utf8))
        defer { stuck.close(promise: nil) }
        let failures = Atomic<Int>(0)
        let client = self.client
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<10 {
                let status = try? client.send(method: "GET", path: "/vm").status
                if status != 200 { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
        #expect(fake.calls.count == 40)
    }

    @Test func stopClosesIdleKeepAliveConnections() throws {
        let idle = try RawConnection.open(path, sending: Array("GET /version HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        Thread.sleep(forTimeInterval: 0.1)
        let started = Date()
        server.stop()
        #expect(Date().timeIntervalSince(started) < 2)
        try idle.closeFuture.wait()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    // MARK: the socket file

    @Test func socketIsMode0600AndNoStagingIsLeft() throws {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.type] as? FileAttributeType == .typeSocket)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["api.sock"])
        server.stop()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path).isEmpty)
    }

    @Test func liveSocketIsRefused() throws {
        let second = ControlServer(socketPath: path, control: FakeVMControl(), version: "2")
        #expect(throws: ControlServerError.socketInUse(path: path)) { try second.start() }
        second.stop()
        #expect(try call("GET", "/version").text.contains("9.8.7"))
    }

    @Test func staleSocketIsReplaced() throws {
        server.stop()
        try RawConnection.makeStaleSocket(path)
        #expect(throws: ControlClientError.connectionRefused(path: path)) { try call("GET", "/vm") }
        let replacement = ControlServer(socketPath: path, control: fake, version: "2.0")
        try replacement.start()
        defer { replacement.stop() }
        #expect(try call("GET", "/version") == (200, #"{"api":1,"engram":"2.0"}"#))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }

    @Test func otherFilesAreRefused() throws {
        let file = directory.path("notes.txt")
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: file))
        let onFile = ControlServer(socketPath: file, control: fake, version: "1")
        #expect(throws: ControlServerError.notASocket(path: file)) { try onFile.start() }
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "keep me")
        let link = directory.path("link.sock")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        #expect(throws: ControlServerError.notASocket(path: link)) { try ControlServer(socketPath: link, control: fake, version: "1").start() }
        #expect(throws: ControlServerError.self) { try ControlServer(socketPath: directory.path("no/such/dir.sock"), control: fake, version: "1").start() }
    }

    @Test func stopLeavesAnotherServersSocketAlone() throws {
        // Someone removed our socket and another VMM took the path: our stop() must not delete theirs.
        try FileManager.default.removeItem(atPath: path)
        let other = ControlServer(socketPath: path, control: FakeVMControl(), version: "other")
        try other.start()
        defer { other.stop() }
        server.stop()
        #expect(try call("GET", "/version").text.contains("other"))
    }

    @Test func tooLongPathIsRefused() {
        let long = directory.path(String(repeating: "x", count: 120))
        #expect(throws: ControlServerError.pathTooLong(path: long, limitInBytes: 107)) {
            try ControlServer(socketPath: long, control: fake, version: "1").start()
        }
        server.stop()
    }
}

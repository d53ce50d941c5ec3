import Foundation
import LinuxSystem
import Testing
import TestSupport

/// virtio-vsock with the test kernel's driver, reached the way Firecracker's tooling reaches a
/// guest: host clients speak `CONNECT <port>\n` on the device's Unix socket, and guest
/// connections to host port P arrive at a Unix socket listening at `PATH_P`.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct VirtioVsockTests {
    private let directory = TemporaryDirectory()
    private var socketPath: String { directory.path("v.sock") }

    private func boot() throws -> GuestProcess {
        let (process, _) = try TestKernel.boot(extra: ["--vsock", "3,\(socketPath)"])
        #expect(try process.command("vsock cid", expect: "VSOCK CID") == "VSOCK CID cid=3")
        return process
    }

    /// Firecracker's handshake: the client and the port the host side got.
    private func connect(port: UInt32) throws -> (StreamSocket, String?) {
        let client = try StreamSocket.connect(unixPath: socketPath)
        client.setReceiveTimeout(milliseconds: 10_000)
        try client.send(Array("CONNECT \(port)\n".utf8))
        return (client, try Self.readLine(client))
    }

    static func readLine(_ socket: StreamSocket) throws -> String? {
        var line: [UInt8] = []
        var byte = [UInt8](repeating: 0, count: 1)
        while true {
            do { _ = try socket.receive(into: &byte, at: 0, count: 1) } catch { return nil }
            if byte[0] == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte[0])
        }
    }

    /// Sends `bytes` from another thread while reading as many back; what came back.
    static func echo(_ client: StreamSocket, _ bytes: [UInt8]) throws -> [UInt8] {
        let writer = Thread { try? client.send(bytes) }
        writer.start()
        var received = [UInt8](repeating: 0, count: bytes.count)
        var count = 0
        while count < bytes.count { count += try client.receive(into: &received, at: count, count: min(65536, bytes.count - count)) }
        return received
    }

    /// The test kernel's pattern: byte k is byte k mod 8 (little-endian) of splitmix64(seed ^ (k/8)).
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: VirtioDeviceTests.splitmix64(seed ^ UInt64($0 / 8)) >> (8 * UInt64($0 % 8))) }
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
    }

    @Test func hostClientsReachAGuestListenerAndGetTheirBytesEchoed() throws {
        let process = try boot()
        defer { process.stop() }
        _ = try process.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let (client, reply) = try connect(port: 5000)
        let hostPort = try #require(reply.flatMap { $0.hasPrefix("OK ") ? UInt32($0.dropFirst(3)) : nil }, "\(reply ?? "nil")")
        #expect(hostPort >= 1 << 30)
        let megabyte = Self.pattern(1 << 20, seed: 42)
        #expect(Self.fnv1a(try Self.echo(client, megabyte)) == Self.fnv1a(megabyte))
        // Several at once, each its own stream.
        let results = Locked<[Int: Bool]>([:])
        let group = DispatchGroup()
        let path = socketPath
        for index in 0..<4 {
            group.enter()
            DispatchQueue.global().async {
                defer { group.leave() }
                let bytes = Self.pattern(256 << 10, seed: UInt64(index))
                guard let client = try? StreamSocket.connect(unixPath: path) else { return }
                client.setReceiveTimeout(milliseconds: 10_000)
                guard (try? client.send(Array("CONNECT 5000\n".utf8))) != nil, (try? Self.readLine(client))??.hasPrefix("OK ") == true,
                      let echoed = try? Self.echo(client, bytes) else { return }
                results.withLock { $0[index] = echoed == bytes }
            }
        }
        #expect(group.wait(timeout: .now() + 30) == .success)
        #expect(results.withLock { $0 } == [0: true, 1: true, 2: true, 3: true])
    }

    @Test func aGuestConnectionReachesTheHostListenerAtPathUnderscorePort() throws {
        let process = try boot()
        defer { process.stop() }
        let listener = try UnixStreamListener(path: socketPath + "_6000")
        let server = Thread {
            var stream: NonBlockingStream?
            let deadline = Date().addingTimeInterval(20)
            while stream == nil, Date() < deadline {
                stream = listener.accept()
                if stream == nil { _ = Poll.isReadable(listener.rawValue, milliseconds: 100) }
            }
            guard let stream else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            echo: while Date() < deadline {
                switch stream.receive(into: &buffer, at: 0, count: buffer.count) {
                case .moved(let count):
                    var sent = 0
                    while sent < count {
                        switch stream.send(buffer, from: sent, count: count - sent) {
                        case .moved(let moved): sent += moved
                        case .wouldBlock: usleep(200)
                        case .closed, .failed: break echo
                        }
                    }
                case .wouldBlock: _ = Poll.isReadable(stream.rawValue, milliseconds: 100)
                case .closed, .failed: break echo
                }
            }
        }
        server.start()
        let bytes = 256 << 10
        let line = try process.command("vsock connect 6000 \(bytes) 9", expect: "VSOCK ECHO", timeout: 30)
        #expect(TestKernel.field("status", in: line) == "ok", "\(line)")
        #expect(TestKernel.field("bytes", in: line) == "\(bytes)")
        #expect(TestKernel.field("digest", in: line).flatMap { UInt64($0, radix: 16) } == Self.fnv1a(Self.pattern(bytes, seed: 9)))
        // Nobody listens at PATH_6001: the guest is refused.
        let refused = try process.command("vsock connect 6001 16 1", expect: "VSOCK ECHO")
        #expect(TestKernel.field("status", in: refused) == "refused")
    }

    @Test func aPortWithNoGuestListenerClosesTheHostClient() throws {
        let process = try boot()
        defer { process.stop() }
        let (_, reply) = try connect(port: 5999)
        #expect(reply == nil, "closed without OK")
        #expect(try process.command("vsock stats", expect: "VSOCK STATS").contains("connections=0"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/socat"), "socat is not installed"))
    func socatWorksAsAClient() throws {
        let process = try boot()
        defer { process.stop() }
        _ = try process.command("vsock listen 5000", expect: "VSOCK LISTEN")
        let socat = Process()
        socat.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        socat.arguments = ["-t", "2", "-", "UNIX-CONNECT:\(socketPath)"]
        let input = Foundation.Pipe(), output = Foundation.Pipe()
        socat.standardInput = input
        socat.standardOutput = output
        try socat.run()
        input.fileHandleForWriting.write(Data("CONNECT 5000\nhello vsock\n".utf8))
        try input.fileHandleForWriting.close()
        socat.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.hasPrefix("OK ") && text.hasSuffix("\nhello vsock\n"), "\(text)")
    }

    @Test func badVsockOptionsEndTheVMMInOneLineBeforeItStarts() throws {
        let plain = directory.path("plain")
        FileManager.default.createFile(atPath: plain, contents: Data([1]))
        let cases: [([String], String)] = [
            (["--vsock", "2,\(socketPath)"], "--vsock \"2,\(socketPath)\": expected CID,PATH"),
            (["--vsock", "3,\(directory.path("missing"))/v.sock"], "its directory \(directory.path("missing")) does not exist"),
            (["--vsock", "3,\(plain)"], "vsock socket \(plain): it exists and is not a socket"),
        ]
        for (options, message) in cases {
            let process = try GuestProcess.engram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "64M"] + options)
            #expect(try process.waitForExit() != 0)
            #expect(process.errorText.contains(message), "\(process.errorText)")
            #expect(!process.consoleText.contains("READY"))
        }
    }
}

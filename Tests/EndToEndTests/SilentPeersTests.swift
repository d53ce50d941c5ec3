import Foundation
import LinuxSystem
import Testing
import TestSupport

/// Connections that connect and say nothing, or start and stop halfway (slow peers), held open
/// against every listener a real Engram process has (a page server, a migration destination, a
/// VNC server, a VM's control socket) while a real client does its work through the same
/// listener: none of them may keep it out.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct SilentPeersTests {
    let directory = TemporaryDirectory()

    /// More than any listener lets wait: handshakes are capped at 16 pending, viewers at 32 and
    /// control connections at 64 (tested here by the control socket's own count).
    static let silentCount = 40

    /// `count` TCP connections to 127.0.0.1:`port`: every other one sends the first bytes of
    /// `start` and then nothing more, the rest send nothing at all; kept open by the caller.
    func silentTCP(_ port: Int, count: Int = silentCount, start: [UInt8]) throws -> [StreamSocket] {
        try (0..<count).map { index in
            let socket = try StreamSocket.connect(to: Endpoint(host: "127.0.0.1", port: UInt16(port)), timeoutMilliseconds: 2000)
            if index % 2 == 1 { try socket.send(Array(start.prefix(start.count / 2))) }
            return socket
        }
    }

    /// The first bytes of a TLS 1.3 ClientHello record (handshake, TLS 1.0 record version, length).
    static let clientHelloStart: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]

    /// A paused guest's snapshot after `fill 4 SEED`; returns the digest it reported.
    func snapshot(_ name: String, seed: Int) throws -> (path: String, digest: String) {
        let path = directory.path(name), socket = directory.path(name + ".sock")
        let (guest, _) = try TestKernel.boot(memory: "64M", extra: ["--api-socket", socket])
        defer { guest.stop() }
        let digest = try #require(TestKernel.field("digest", in: try guest.command("fill 4 \(seed)", expect: "FILL ")))
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        try #require(result.status == 0, "\(result.errors)")
        return (path, digest)
    }

    /// The number after "HOST:" in a line like "… on 127.0.0.1:PORT …".
    func port(in line: String) throws -> Int {
        let word = line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") } ?? ""
        return try #require(Int(word.dropFirst("127.0.0.1:".count).prefix { $0.isNumber }), "\(line)")
    }

    @Test func aPageServerStillServesARestore() throws {
        let secret = try MigrationPair.secretFile(in: directory, "secret")
        let (path, digest) = try snapshot("served.snap", seed: 3)
        let server = try GuestProcess.engram(["serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret])
        defer { server.stop() }
        let port = try port(in: try server.waitForErrorLine(containing: "serving "))
        let silent = try silentTCP(port, start: Self.clientHelloStart)
        let restored = try GuestProcess.engram(["restore", "tcp://127.0.0.1:\(port)", "--memory", "lazy", "--secret-file", secret])
        defer { restored.stop() }
        #expect(TestKernel.field("digest", in: try restored.command("digest", expect: "DIGEST ")) == digest)
        #expect(server.isRunning, "\(server.errorText)")
        withExtendedLifetime(silent) {}
    }

    @Test func aMigrationDestinationStillTakesTheRealSource() throws {
        let secret = try MigrationPair.secretFile(in: directory, "secret")
        let sourceSocket = directory.path("source.sock")
        let (source, _) = try TestKernel.boot(memory: "64M", extra: ["--api-socket", sourceSocket])
        defer { source.stop() }
        let digest = try #require(TestKernel.field("digest", in: try source.command("fill 4 9", expect: "FILL ")))
        let destination = try GuestProcess.engram(["receive", "--listen", "127.0.0.1:0", "--secret-file", secret])
        defer { destination.stop() }
        let port = try port(in: try destination.waitForErrorLine(containing: "waiting for a migration on "))
        let silent = try silentTCP(port, start: Self.clientHelloStart)
        let migrated = try runEngram(["migrate", sourceSocket, "--to", "tcp://127.0.0.1:\(port)", "--secret-file", secret, "--mode", "precopy"],
                                     timeout: 120)
        #expect(migrated.status == 0, "\(migrated.errors)")
        _ = try destination.waitForErrorLine(containing: "the guest runs here")
        #expect(TestKernel.field("digest", in: try destination.command("digest", expect: "DIGEST ")) == digest)
        withExtendedLifetime(silent) {}
    }

    @Test(.enabled(if: VNCClientCheck.available, "needs vncdotool (pip)"))
    func aVNCServerStillShowsAViewerTheScreen() throws {
        let display = directory.path("screen.fb")
        let (guest, _) = try TestKernel.boot(cmdline: "cpus=1 -- tag on-the-screen", extra: ["--display", display])
        defer { guest.stop() }
        let server = try GuestProcess.engram(["display", display, "--vnc", "127.0.0.1:0"])
        defer { server.stop() }
        let port = try port(in: try server.waitForErrorLine(containing: "VNC on 127.0.0.1:"))
        let silent = try silentTCP(port, start: Array("RFB 003.008\n".utf8))
        let capture = directory.path("capture.png")
        let result = try DisplayVNCTests.viewer(port, ["capture", capture])
        #expect(result.status == 0, "\(result.errors)")
        #expect(FileManager.default.fileExists(atPath: capture))
        withExtendedLifetime(silent) {}
    }

    @Test func aVMsControlSocketStillAnswers() throws {
        let socket = directory.path("api.sock")
        let (guest, _) = try TestKernel.boot(memory: "64M", extra: ["--api-socket", socket])
        defer { guest.stop() }
        // Past the socket's 64 connections: the oldest silent ones are the ones let go. Every other
        // one sends half a request head and stops.
        let silent = try (0..<80).map { index in
            let connection = try StreamSocket.connect(unixPath: socket)
            if index % 2 == 1 { try connection.send(Array("PUT /vm/pause HTTP/1.1\r\nHost: x\r\n".utf8)) }
            return connection
        }
        let paused = try runEngram(["ctl", socket, "pause"])
        #expect(paused.status == 0, "\(paused.output) \(paused.errors)")
        let state = try runEngram(["ctl", socket, "get", "/vm"])
        #expect(state.status == 0 && state.output.contains("paused"), "\(state.output) \(state.errors)")
        let resumed = try runEngram(["ctl", socket, "resume"])
        #expect(resumed.status == 0, "\(resumed.output) \(resumed.errors)")
        #expect(try guest.command("ticks", expect: "TICKS ").contains("TICKS"))
        withExtendedLifetime(silent) {}
    }
}

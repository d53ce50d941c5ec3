import Foundation
import Testing
import TestSupport

/// The system-call filters in force: each thread role, made to try a call its filter forbids
/// (the test-only ENGRAM_TEST_SECCOMP_TRIP), ends the VMM with one line naming the role and the
/// call; `--no-seccomp` says loudly that the filters are off. Every other end-to-end test runs
/// with the filters on, which is what shows the lists are complete.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct SeccompTests {
    let directory = TemporaryDirectory()

    /// Waits for `process` to end as a denied call ends it, and checks the line.
    func expectReport(_ process: GuestProcess, role: String) throws {
        let status = try process.waitForExit(timeout: 60)
        #expect(status == 159, "exit status \(status); stderr: \(process.errorText)")
        let line = "engram: seccomp: the \(role) thread called personality (135), which its filter forbids; the VMM stops here"
        #expect(process.errorText.contains(line), "stderr: \(process.errorText)")
        #expect(process.errorText.components(separatedBy: "engram: seccomp:").count == 2, "one report: \(process.errorText)")
    }

    func trip(_ role: String) -> [String: String] { ["ENGRAM_TEST_SECCOMP_TRIP": role] }

    func runArguments(_ extra: [String] = []) -> [String] {
        ["run", "--kernel", ProjectPaths.testKernel, "--memory", "128M"] + extra
    }

    func secretFile() throws -> String {
        let path = directory.path("secret")
        try Data((0..<32).map { _ in UInt8.random(in: 0x61...0x7a) }).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// Opens a TCP connection to 127.0.0.1:`port`, which makes the listener start a thread for it.
    func connect(port: Int) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        // Left open: the process ends on its own.
    }

    /// A snapshot of a freshly booted guest, at NAME.snap.
    func pausedSnapshot(_ name: String) throws -> String {
        let socket = directory.path(name + ".sock"), snapshot = directory.path(name + ".snap")
        let (source, _) = try TestKernel.boot(memory: "128M", extra: ["--api-socket", socket])
        defer { source.stop() }
        #expect(try runEngram(["snapshot", socket, snapshot, "--stay-paused"]).status == 0)
        return snapshot
    }

    func port(in line: String) -> Int? {
        let address = line.components(separatedBy: " on ").last?.split(separator: " ").first ?? ""
        return Int(address.split(separator: ":").last ?? "")
    }

    @Test(arguments: ["control", "vcpu", "device I/O"])
    func aRunningVMsThreadIsStoppedWithOneLine(role: String) throws {
        let process = try GuestProcess.engram(runArguments(["--rng", "on"]), environment: trip(role))
        defer { process.stop() }
        try expectReport(process, role: role)
    }

    /// An ioctl request outside a narrow role's list (KVM_CREATE_VM, 0xae01) is stopped too, and
    /// the line names the request: the roles that may ioctl are limited to their requests.
    @Test(arguments: ["vcpu", "device I/O"])
    func aForbiddenIoctlRequestIsStoppedWithOneLine(role: String) throws {
        let process = try GuestProcess.engram(runArguments(["--rng", "on"]), environment: trip(role + " ioctl"))
        defer { process.stop() }
        let status = try process.waitForExit(timeout: 60)
        #expect(status == 159, "exit status \(status); stderr: \(process.errorText)")
        let line = "engram: seccomp: the \(role) thread called ioctl (16) with request 0xae01, which its filter forbids"
        #expect(process.errorText.contains(line), "stderr: \(process.errorText)")
    }

    @Test func aLazyRestoresFaultHandlerIsStoppedWithOneLine() throws {
        let snapshot = try pausedSnapshot("fault")
        let restored = try GuestProcess.engram(["restore", snapshot, "--memory", "lazy"], environment: trip("page fault"))
        defer { restored.stop() }
        try expectReport(restored, role: "page fault")
    }

    @Test func aMigrationHandshakeIsStoppedWithOneLine() throws {
        let receiver = try GuestProcess.engram(
            ["receive", "--listen", "127.0.0.1:0", "--secret-file", try secretFile()], environment: trip("migration"))
        defer { receiver.stop() }
        let line = try receiver.waitForErrorLine(containing: "waiting for a migration on ")
        connect(port: try #require(port(in: line), "\(line)"))
        try expectReport(receiver, role: "migration")
    }

    @Test func aPageServerConnectionIsStoppedWithOneLine() throws {
        let snapshot = try pausedSnapshot("serve")
        let server = try GuestProcess.engram(
            ["serve", snapshot, "--listen", "127.0.0.1:0", "--secret-file", try secretFile()], environment: trip("page server"))
        defer { server.stop() }
        let line = try server.waitForErrorLine(containing: "serving ")
        connect(port: try #require(port(in: line), "\(line)"))
        try expectReport(server, role: "page server")
    }

    @Test func theDisplaysThreadsAreStoppedWithOneLine() throws {
        let framebuffer = directory.path("fb")
        let (source, _) = try TestKernel.boot(memory: "128M", extra: ["--display", framebuffer])
        defer { source.stop() }
        let display = try GuestProcess.engram(["display", framebuffer, "--vnc", "127.0.0.1:0"], environment: trip("display"))
        defer { display.stop() }
        try expectReport(display, role: "display")
    }

    @Test func withoutFiltersTheVMMSaysSoAndTheTriggerDoesNothing() throws {
        let process = try GuestProcess.engram(runArguments(["--no-seccomp"]), environment: trip("vcpu"))
        defer { process.stop() }
        _ = try process.waitForLine(containing: "READY")
        #expect(process.errorText.contains("WARNING: --no-seccomp: system-call filters are off"))
        let line = try process.command("ticks", expect: "TICKS ")
        #expect(!line.isEmpty && process.isRunning)
    }
}

import Foundation
import Testing
import TestSupport

/// A live-migration test bed: the source VM (`engram run`) in one network namespace and the
/// destination (`engram receive`) in another, joined by a veth pair made for the test. Both
/// see the same file system (secrets, API sockets, shared RAM files in `directory`).
///
/// Every process it starts is ended by `shutDown()` (SIGTERM, then SIGKILL if it hangs), which
/// each test defers right after making the pair, before the namespaces go away with it.
final class MigrationPair {
    let directory: TemporaryDirectory
    let hosts: NetworkNamespacePair
    /// The secret both ends are given (a file, mode 0600).
    let secret: String
    private var processes: [GuestProcess] = []

    /// True if namespaces and traffic shaping (`tc`) are available.
    static var canShapeTraffic: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/tc") }

    init(directory: TemporaryDirectory) throws {
        self.directory = directory
        hosts = try NetworkNamespacePair()
        secret = try Self.secretFile(in: directory, "secret")
    }

    /// The namespace the source VM runs in (the pair's "client"), and the one the destination waits in.
    var sourceNamespace: String { hosts.client }
    var destinationNamespace: String { hosts.server }

    /// A fresh secret file (mode 0600) of 32 random bytes in hex.
    static func secretFile(in directory: TemporaryDirectory, _ name: String) throws -> String {
        let path = directory.path(name)
        let text = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    /// Starts `engram arguments` inside `namespace`; it is ended by `shutDown()`.
    func engram(in namespace: String, _ arguments: [String]) throws -> GuestProcess {
        let (executable, wrapped) = hosts.command(in: namespace, ProjectPaths.engram, arguments)
        let process = try GuestProcess(executable: executable, arguments: wrapped)
        processes.append(process)
        return process
    }

    /// `engram receive` waiting in the destination namespace on its veth address; returns it and
    /// the URL a source migrates to.
    func receive(apiSocket: String? = nil, extra: [String] = []) throws -> (GuestProcess, String) {
        var arguments = ["receive", "--listen", "\(hosts.serverAddress):0", "--secret-file", secret]
        if let apiSocket { arguments += ["--api-socket", apiSocket] }
        let process = try engram(in: destinationNamespace, arguments + extra)
        let line = try process.waitForErrorLine(containing: "waiting for a migration on ")
        let address = line.components(separatedBy: " on ").last ?? ""
        let port = try #require(Int(address.split(separator: ":").last ?? ""), "\(line)")
        #expect(port > 0, "\(line)")
        return (process, "tcp://\(hosts.serverAddress):\(port)")
    }

    /// The test kernel booted in the source namespace with a control socket; returns it and the socket.
    func source(_ name: String, memory: String = "256M", cmdline: String = "cpus=1", extra: [String] = []) throws -> (GuestProcess, String) {
        let socket = directory.path(name + ".api")
        let arguments = ["run", "--kernel", ProjectPaths.testKernel, "--memory", memory, "--cpus", "1", "--cmdline", cmdline,
                         "--api-socket", socket] + extra
        let process = try engram(in: sourceNamespace, arguments)
        try process.waitForLine(containing: "READY")
        return (process, socket)
    }

    /// The outcome of `engram migrate`: its exit status, the status JSON it printed, and its stderr.
    struct Migration {
        var status: Int32
        var report: [String: Any]
        var output: String
        var errors: String
    }

    /// The arguments of `engram migrate` (run from the test's own namespace: it only talks to the socket).
    func migrateArguments(_ socket: String, to url: String, mode: String, secret: String? = nil, extra: [String] = []) -> [String] {
        ["migrate", socket, "--to", url, "--secret-file", secret ?? self.secret, "--mode", mode] + extra
    }

    /// Runs `engram migrate` to the end.
    func migrate(_ socket: String, to url: String, mode: String, secret: String? = nil, extra: [String] = [], timeout: TimeInterval = 90) throws -> Migration {
        let process = try GuestProcess.engram(migrateArguments(socket, to: url, mode: mode, secret: secret, extra: extra))
        processes.append(process)
        let status = try process.waitForExit(timeout: timeout)
        return Migration(status: status, report: Self.object(process.consoleText), output: process.consoleText, errors: process.errorText)
    }

    /// Starts `engram migrate` and returns at once (for faults injected while it copies).
    func startMigrate(_ socket: String, to url: String, mode: String, extra: [String] = []) throws -> GuestProcess {
        let process = try GuestProcess.engram(migrateArguments(socket, to: url, mode: mode, extra: extra))
        processes.append(process)
        return process
    }

    /// GET `path` on a control socket, decoded.
    static func get(_ socket: String, _ path: String) throws -> [String: Any] {
        let result = try runEngram(["ctl", socket, "get", path])
        #expect(result.status == 0, "GET \(path): \(result.errors)")
        return object(result.output)
    }

    static func object(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    /// The source's end of the veth pair.
    func sourceLink() throws -> String {
        let listing = try run("/usr/sbin/ip", ["-n", sourceNamespace, "-o", "link", "show", "type", "veth"])
        // "2: ecXXXX@if3: <BROADCAST,...> ..."
        let name = listing.split(separator: "\n").first?.split(separator: ":").dropFirst().first?
            .trimmingCharacters(in: .whitespaces).split(separator: "@").first.map(String.init)
        return try #require(name, "no veth in \(sourceNamespace): \(listing)")
    }

    /// Limits what the source sends to `rate` (a token bucket on its veth), so a pre-copy of a
    /// few tens of MiB takes seconds and a fault can be injected in the middle of it.
    func throttleSource(_ rate: String) throws {
        try run("/usr/sbin/tc", ["-n", sourceNamespace, "qdisc", "replace", "dev", try sourceLink(), "root",
                                 "tbf", "rate", rate, "burst", "256kb", "latency", "100ms"])
    }

    /// Removes the limit `throttleSource` set.
    func unthrottleSource() throws {
        try run("/usr/sbin/tc", ["-n", sourceNamespace, "qdisc", "del", "dev", try sourceLink(), "root"])
    }

    /// Takes the source's side of the link down: nothing more crosses, nothing is reset.
    func cutLink() throws {
        try run("/usr/sbin/ip", ["-n", sourceNamespace, "link", "set", try sourceLink(), "down"])
    }

    /// Sends `bytes` to `host:port` from the source namespace over a plain TCP connection (bash's
    /// /dev/tcp), keeping it open a moment so the peer reads them before it closes.
    func sendRaw(_ bytes: Data, to url: String) throws {
        let file = directory.path("raw-\(UUID().uuidString.prefix(8))")
        try bytes.write(to: URL(fileURLWithPath: file))
        let address = url.dropFirst("tcp://".count)
        let host = address.split(separator: ":").first ?? ""
        let port = address.split(separator: ":").last ?? ""
        let script = "exec 3<>/dev/tcp/\(host)/\(port) && cat '\(file)' >&3 && sleep 1"
        try run("/usr/sbin/ip", ["netns", "exec", sourceNamespace, "/bin/bash", "-c", script])
    }

    /// Ends every process the pair started: SIGTERM, then SIGKILL after 10 s.
    func shutDown() {
        for process in processes.reversed() where process.isRunning {
            _ = Glibc.kill(process.processID, SIGTERM)
            if (try? process.waitForExit(timeout: 10)) == nil { process.kill() }
        }
        processes.removeAll()
    }

    /// Runs a tool to the end; its standard output.
    @discardableResult
    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        let process = try GuestProcess(executable: executable, arguments: arguments)
        let status = try process.waitForExit(timeout: 30)
        guard status == 0 else {
            throw GuestProcess.Timeout(description: "\(executable) \(arguments.joined(separator: " ")) failed (\(status)): \(process.errorText)")
        }
        return process.consoleText
    }
}

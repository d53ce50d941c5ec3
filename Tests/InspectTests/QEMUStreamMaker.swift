import Foundation
import TestSupport

/// Saves real migration streams with Debian's qemu-system-x86_64 (7.2), driven over QMP on its
/// standard input and output: the VM is started stopped (-S), bytes are planted in its RAM file,
/// and `migrate "exec:cat > FILE"` writes the stream.
final class QEMUStreamMaker {
    static let executable = "/usr/bin/qemu-system-x86_64"
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: executable) }

    struct Failure: Error, CustomStringConvertible { let description: String }

    private let process: GuestProcess
    private var nextID = 0

    /// Starts QEMU with `arguments` (plus a stopped CPU, no devices, no display, QMP on stdio)
    /// and waits until QMP answers, by which time the machine has been reset.
    init(arguments: [String]) throws {
        process = try GuestProcess(executable: Self.executable,
                                   arguments: ["-S", "-nodefaults", "-display", "none", "-qmp", "stdio"] + arguments)
        try process.waitForLine(containing: "\"QMP\"", timeout: 15)
        _ = try execute("qmp_capabilities")
    }

    deinit { process.stop() }

    /// Runs one QMP command and returns its response line; an error response throws.
    @discardableResult
    func execute(_ command: String, arguments: String = "{}") throws -> String {
        nextID += 1
        let id = "t\(nextID)"
        let line = try process.command("{\"execute\": \"\(command)\", \"arguments\": \(arguments), \"id\": \"\(id)\"}",
                                        expect: "\"id\": \"\(id)\"", timeout: 15)
        if line.contains("\"error\"") { throw Failure(description: "QMP \(command) failed: \(line)") }
        return line
    }

    /// Sets migration capabilities, e.g. ["x-ignore-shared": true].
    func setCapabilities(_ capabilities: [String: Bool]) throws {
        let list = capabilities.map { "{\"capability\": \"\($0.key)\", \"state\": \($0.value)}" }.joined(separator: ", ")
        try execute("migrate-set-capabilities", arguments: "{\"capabilities\": [\(list)]}")
    }

    /// Migrates to `path` and waits until the migration completes — or, with `untilActive`, only
    /// until it is under way and the file has its first bytes, then cancels it (a postcopy stream
    /// to a file never completes: it waits for a destination's return path).
    func migrate(to path: String, untilActive: Bool = false) throws {
        try execute("migrate", arguments: "{\"uri\": \"exec:cat > \(path)\"}")
        let deadline = Date().addingTimeInterval(15)
        var finished = false
        while !finished, Date() < deadline {
            let status = try execute("query-migrate")
            if status.contains("\"status\": \"completed\"") { finished = true; break }
            if status.contains("\"status\": \"failed\"") { throw Failure(description: "migration to \(path) failed: \(status)") }
            if untilActive, status.contains("\"status\": \"active\""),
               let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size >= 4096 {
                try execute("migrate_cancel")
                finished = true
            }
            if !finished { Thread.sleep(forTimeInterval: 0.02) }
        }
        guard finished else { throw Failure(description: "migration to \(path) did not finish in 15 s") }
    }

    /// Runs the VM for a moment and stops it again: QEMU refuses to migrate a VM that an earlier
    /// migration paused.
    func resumeAndStop() throws {
        try execute("cont")
        try execute("stop")
    }

    /// Quits QEMU.
    func quit() {
        _ = try? process.command("{\"execute\": \"quit\"}", expect: "SHUTDOWN", timeout: 10)
        process.stop()
    }

    /// Writes `bytes` at `offset` of a RAM backing file shared with the guest.
    static func plant(_ bytes: [UInt8], at offset: UInt64, in path: String) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data(bytes))
        try handle.synchronize()
    }
}

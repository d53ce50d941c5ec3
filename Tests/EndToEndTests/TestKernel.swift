import Foundation
import TestSupport

/// Starting the test kernel under engram and reading its console lines (guest/README.md).
enum TestKernel {
    static var available: Bool { TestEnvironment.hasKVM && TestEnvironment.hasTestKernel }

    /// Boots the test kernel and waits for its READY line.
    static func boot(cpus: Int = 1, memory: String = "256M", cmdline: String? = nil, extra: [String] = []) throws -> (GuestProcess, String) {
        var arguments = ["run", "--kernel", ProjectPaths.testKernel, "--memory", memory, "--cpus", "\(cpus)"]
        if let cmdline { arguments += ["--cmdline", cmdline] }
        let process = try GuestProcess.engram(arguments + extra)
        let ready = try process.waitForLine(containing: "READY")
        return (process, ready)
    }

    /// The value of `key=` in a console line.
    static func field(_ key: String, in line: String) -> String? {
        line.split(separator: " ").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    /// The number after `TICKS`.
    static func ticks(_ process: GuestProcess) throws -> Int {
        let line = try process.command("ticks", expect: "TICKS ")
        return Int(line.split(separator: " ").last ?? "") ?? -1
    }

    /// Writes a fresh tag into guest memory; returns it and the guest-physical address the guest reports.
    static func writeTag(_ process: GuestProcess) throws -> (String, UInt64) {
        let tag = "engram-tag-\(UUID().uuidString.prefix(12))"
        let line = try process.command("tag \(tag)", expect: "TAG \(tag) ")
        let address = field("gpa", in: line).flatMap { UInt64($0.dropFirst(2), radix: 16) }
        return (tag, address ?? UInt64.max)
    }
}

extension Data {
    /// The bytes of `file` at `offset`, `count` long.
    static func read(_ path: String, offset: UInt64, count: Int) throws -> Data {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        return try handle.read(upToCount: count) ?? Data()
    }
}

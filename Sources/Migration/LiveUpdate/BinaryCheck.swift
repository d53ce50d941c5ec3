import FoundationEssentials
import Glibc
import Machine
import SystemPackage

/// What `engram version --json` reports: the version and the formats that binary reads.
package struct EngramBinaryInfo: Codable, Sendable, Equatable {
    package var version: String
    package var machineStateVersion: Int
    package var updateHandoffVersion: Int

    package init(version: String, machineStateVersion: Int = MachineStateRecord.currentVersion,
                 updateHandoffVersion: Int = UpdateHandoff.currentVersion) {
        self.version = version
        self.machineStateVersion = machineStateVersion
        self.updateHandoffVersion = updateHandoffVersion
    }

    /// Snake-case JSON, as the control API writes.
    package func json() -> String {
        #"{"version":"\#(version)","machine_state_version":\#(machineStateVersion),"update_handoff_version":\#(updateHandoffVersion)}"#
    }
}

/// Checks, before anything is paused, that a binary can take over this VM: it exists, is an
/// executable file, and says (`BINARY version --json`) that it reads this machine state and
/// handoff version. Like QEMU's cpr, the old VMM asks the new one; a binary that cannot answer
/// in time is refused.
package enum BinaryCheck {
    /// How long the version query may take by default.
    package static let defaultTimeoutMilliseconds: Int32 = 5000
    /// The most output read from it.
    static let maximumOutputBytes = 64 * 1024

    package static func check(
        _ path: String, timeoutMilliseconds: Int32 = defaultTimeoutMilliseconds
    ) throws(LiveUpdateError) -> EngramBinaryInfo {
        func refuse(_ reason: String) -> LiveUpdateError { .binaryUnusable(path: path, reason: reason) }
        guard path.hasPrefix("/") else { throw refuse("the binary must be an absolute path") }
        var info = stat()
        guard unsafe stat(path, &info) == 0 else {
            throw refuse(errno == ENOENT ? "it does not exist" : "\(Errno(rawValue: errno))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw refuse("it is not a regular file") }
        guard unsafe access(path, X_OK) == 0 else {
            throw refuse("it is not executable (mode \(String(info.st_mode & 0o7777, radix: 8)))")
        }
        let (status, output) = try run(path, arguments: ["version", "--json"], timeoutMilliseconds: timeoutMilliseconds)
        let query = "`\(path) version --json`"
        guard status == 0 else {
            let detail = String(decoding: output.prefix(200), as: UTF8.self).split(whereSeparator: \.isNewline).first.map { ": \($0)" } ?? ""
            throw refuse(status < 0 ? "\(query) did not answer within \(timeoutMilliseconds) ms" : "\(query) exited with status \(status)\(detail)")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let answer = try? decoder.decode(EngramBinaryInfo.self, from: Data(output)) else {
            throw refuse("\(query) did not answer with an Engram version (is it Engram 0.1 or later?)")
        }
        guard answer.machineStateVersion == MachineStateRecord.currentVersion else {
            throw refuse(
                "it reads machine state version \(answer.machineStateVersion); this VM's state is version \(MachineStateRecord.currentVersion)")
        }
        guard answer.updateHandoffVersion == UpdateHandoff.currentVersion else {
            throw refuse(
                "it reads update handoff version \(answer.updateHandoffVersion); this VMM writes version \(UpdateHandoff.currentVersion)")
        }
        return answer
    }

    /// Runs `path arguments...` with its standard output and error on a pipe; returns its exit
    /// status (-1 if it was killed for running past the timeout) and what it wrote.
    private static func run(
        _ path: String, arguments: [String], timeoutMilliseconds: Int32
    ) throws(LiveUpdateError) -> (Int32, [UInt8]) {
        var pipeEnds: [CInt] = [-1, -1]
        guard unsafe pipe(&pipeEnds) == 0 else { throw .binaryUnusable(path: path, reason: "pipe: \(Errno(rawValue: errno))") }
        let (readEnd, writeEnd) = (pipeEnds[0], pipeEnds[1])
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
        defer { close(readEnd) }
        let child: pid_t
        do {
            defer { close(writeEnd) }
            child = try spawn(path, arguments: arguments, output: writeEnd)
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var deadline = timespec()
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Int64(deadline.tv_sec) * 1000 + Int64(deadline.tv_nsec) / 1_000_000 + Int64(timeoutMilliseconds)
        var timedOut = false
        while output.count < maximumOutputBytes {
            var now = timespec()
            _ = unsafe clock_gettime(CLOCK_MONOTONIC, &now)
            let remaining = end - (Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
            guard remaining > 0 else { timedOut = true; break }
            var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            let ready = unsafe poll(&poller, 1, Int32(remaining))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { timedOut = ready == 0; break }
            let count = unsafe buffer.withUnsafeMutableBytes { unsafe read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            output.append(contentsOf: buffer[0..<count])
        }
        if timedOut { kill(child, SIGKILL) }
        var status: Int32 = 0
        while unsafe waitpid(child, &status, 0) < 0 && errno == EINTR {}
        if timedOut { return (-1, output) }
        // WIFEXITED / WEXITSTATUS, which Swift does not import (they are macros).
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }

    /// posix_spawn with standard input from /dev/null and standard output and error to `output`.
    private static func spawn(_ path: String, arguments: [String], output: CInt) throws(LiveUpdateError) -> pid_t {
        var actions = unsafe posix_spawn_file_actions_t()
        unsafe posix_spawn_file_actions_init(&actions)
        defer { unsafe posix_spawn_file_actions_destroy(&actions) }
        unsafe posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        unsafe posix_spawn_file_actions_adddup2(&actions, output, 1)
        unsafe posix_spawn_file_actions_adddup2(&actions, output, 2)
        let argv = unsafe ([path] + arguments).map { unsafe strdup($0) } + [nil]
        defer { unsafe argv.forEach { unsafe free($0) } }
        var child: pid_t = 0
        let result = unsafe posix_spawn(&child, path, &actions, nil, argv, environ)
        guard result == 0 else {
            throw .binaryUnusable(path: path, reason: "it cannot be started: \(Errno(rawValue: result))")
        }
        return child
    }
}

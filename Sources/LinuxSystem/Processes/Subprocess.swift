import Glibc
import SystemPackage

/// Short-lived child processes: started with posix_spawn (standard input from /dev/null,
/// output and errors on a pipe), read with a deadline, reaped.
package enum Subprocess {
    /// How a child ended.
    package enum Termination: Sendable, Equatable {
        /// It exited with this status.
        case exited(Int32)
        /// A signal ended it.
        case signaled(Int32)
        /// It ran past the deadline and was killed.
        case timedOut
    }

    /// Runs `path arguments...`, collecting at most `maximumOutputBytes` of what it writes to
    /// standard output and error, for at most `timeoutMilliseconds`.
    package static func run(
        _ path: String, arguments: [String], timeoutMilliseconds: Int32, maximumOutputBytes: Int = 64 * 1024
    ) throws(SystemError) -> (Termination, [UInt8]) {
        let pipe = try Pipe()
        var attempt = 0
        let child: pid_t
        while true {
            do {
                child = try spawn(path, arguments: arguments, output: pipe.writeEnd.rawValue)
                break
            } catch where error.errno == .textFileBusy && attempt < 50 {
                // A file just written may still be open for writing in a child another thread
                // forked meanwhile; that passes within milliseconds.
                attempt += 1
                usleep(10_000)
            }
        }
        close(pipe.writeEnd.release())  // the child holds its copy; EOF comes when it exits
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let end = MonotonicClock.nanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        var timedOut = false
        while output.count < maximumOutputBytes {
            let now = MonotonicClock.nanoseconds()
            guard now < end else { timedOut = true; break }
            guard Poll.isReadable(pipe.readEnd.rawValue, milliseconds: CInt((end - now) / 1_000_000) + 1) else { continue }
            let count: Int
            // SAFETY: read writes at most the buffer's size into it, during the call.
            do { count = try unsafe buffer.withUnsafeMutableBytes { try unsafe pipe.readEnd.descriptor.read(into: $0) } } catch { break }
            guard count > 0 else { break }
            output.append(contentsOf: buffer[0..<count])
        }
        if timedOut { kill(child, SIGKILL) }
        let status = waitForExit(child)
        if timedOut { return (.timedOut, output) }
        return (status, output)
    }

    /// posix_spawn of `path` with standard input from /dev/null and standard output and error to
    /// `output`; returns the child's pid.
    package static func spawn(_ path: String, arguments: [String], output: CInt) throws(SystemError) -> pid_t {
        var actions = unsafe posix_spawn_file_actions_t()
        unsafe posix_spawn_file_actions_init(&actions)
        defer { unsafe posix_spawn_file_actions_destroy(&actions) }
        unsafe posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        unsafe posix_spawn_file_actions_adddup2(&actions, output, 1)
        unsafe posix_spawn_file_actions_adddup2(&actions, output, 2)
        return try unsafe spawn(path, arguments: arguments, actions: &actions)
    }

    /// posix_spawn of `path arguments...` with this environment and `actions`; the child's pid.
    static func spawn(_ path: String, arguments: [String], actions: inout posix_spawn_file_actions_t) throws(SystemError) -> pid_t {
        // SAFETY: each strdup'd argument lives until the free below, after posix_spawn returned.
        let argv = unsafe ([path] + arguments).map { unsafe strdup($0) } + [nil]
        defer { unsafe argv.forEach { unsafe free($0) } }
        var child: pid_t = 0
        let result = unsafe posix_spawn(&child, path, &actions, nil, argv, environ)
        guard result == 0 else { throw SystemError("posix_spawn", on: path, Errno(rawValue: result)) }
        return child
    }

    /// Waits for child `pid` to end and reaps it.
    @discardableResult
    package static func waitForExit(_ pid: pid_t) -> Termination {
        var status: Int32 = 0
        while unsafe waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return .exited(-1) }
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        return status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }
}

import Foundation

/// A VMM process (engram or QEMU) started by a test, with its console on pipes.
///
/// Output is collected by a background reader; tests wait for console lines with
/// `waitForLine`. Timeouts are hang guards, never assertions about speed.
public final class GuestProcess: @unchecked Sendable {
    public struct Timeout: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    private let process: ChildProcess
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()
    private let lock = NSLock()
    private var outputBytes = Data()
    private var errorBytes = Data()
    /// End of file on standard output: no process holds the console any more (a live update by
    /// transfer hands it to a new VMM, which keeps it open after the first one exits).
    private var outputClosed = false
    /// End of file on standard error.
    private var errorsClosed = false
    /// Readers between taking bytes from a pipe and appending them.
    private var readsInFlight = 0

    /// Starts `executable` with `arguments`; standard input stays open for `send`.
    /// `environment` adds to (or replaces in) this process's environment for the child only.
    public init(executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        // A child that ends early (as a test may make it) must fail that test, not end the whole
        // run with SIGPIPE when another line is sent to it.
        signal(SIGPIPE, SIG_IGN)
        let parentEnds = [input.fileHandleForWriting, output.fileHandleForReading, errors.fileHandleForReading].map(\.fileDescriptor)
        // Close-on-exec everywhere, so children spawned by parallel tests never hold each other's pipes.
        for pipe in [input, output, errors] {
            for handle in [pipe.fileHandleForReading, pipe.fileHandleForWriting] { _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC) }
        }
        process = try ChildProcess(
            executable: executable, arguments: arguments, standardInput: input.fileHandleForReading.fileDescriptor,
            standardOutput: output.fileHandleForWriting.fileDescriptor, standardError: errors.fileHandleForWriting.fileDescriptor,
            closeInChild: parentEnds, environment: environment)
        // The child has its own copies; the reader sees end of file once the child's are closed.
        try? input.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
        try? errors.fileHandleForWriting.close()
        output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.lock.lock(); self?.readsInFlight += 1; self?.lock.unlock()
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock(); self.readsInFlight -= 1; self.outputBytes.append(data); if data.isEmpty { self.outputClosed = true }; self.lock.unlock()
            if data.isEmpty { handle.readabilityHandler = nil }
        }
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            self?.lock.lock(); self?.readsInFlight += 1; self?.lock.unlock()
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock(); self.readsInFlight -= 1; self.errorBytes.append(data); if data.isEmpty { self.errorsClosed = true }; self.lock.unlock()
            if data.isEmpty { handle.readabilityHandler = nil }
        }
    }

    /// Starts `engram` with `arguments`.
    public static func engram(_ arguments: [String], environment: [String: String] = [:]) throws -> GuestProcess {
        try GuestProcess(executable: ProjectPaths.engram, arguments: arguments, environment: environment)
    }

    deinit {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
    }

    /// Everything the process printed on standard output so far.
    public var consoleText: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: outputBytes, as: UTF8.self)
    }

    /// Everything the process printed on standard error so far.
    public var errorText: String {
        lock.lock(); defer { lock.unlock() }
        return String(decoding: errorBytes, as: UTF8.self)
    }

    /// Whether the console pipe has reached end of file (shortly after the last process holding it exits).
    private var consoleClosed: Bool {
        // A process that exited has closed its end; give the reader a moment to see end of file.
        for _ in 0..<10 {
            lock.lock(); let closed = outputClosed; lock.unlock()
            if closed { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    public var processID: Int32 { process.processID }
    public var isRunning: Bool { process.isRunning }

    /// Types `text` on the guest's console.
    public func send(_ text: String) {
        try? input.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Waits for a complete console line containing `needle` that appears after `after` bytes of output; returns it.
    @discardableResult
    public func waitForLine(containing needle: String, after offset: Int = 0, timeout: TimeInterval = 60) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let exited = !process.isRunning && consoleClosed
            if exited { Thread.sleep(forTimeInterval: 0.1) }  // let the readers drain the pipes
            if let line = completeLine(containing: needle, after: offset, includingUnterminated: exited) { return line }
            if exited {
                throw Timeout(description: "process exited (\((process.exitStatus ?? -1))) before printing \"\(needle)\"; stderr: \(errorText.suffix(600)); console: \(consoleText.suffix(1500))")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw Timeout(description: "no console line with \"\(needle)\" within \(Int(timeout)) s; stderr: \(errorText.suffix(600)); console: \(consoleText.suffix(1500))")
    }

    /// Waits for a complete line on standard error containing `needle` (Engram's own messages); returns it.
    @discardableResult
    public func waitForErrorLine(containing needle: String, timeout: TimeInterval = 60) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let exited = !process.isRunning
            if exited { Thread.sleep(forTimeInterval: 0.1) }
            if let line = ConsoleLines.first(containing: needle, in: Array(errorText.utf8), includingUnterminated: exited) { return line }
            if exited { throw Timeout(description: "process exited (\(process.exitStatus ?? -1)) before printing \"\(needle)\" on stderr: \(errorText.suffix(800))") }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw Timeout(description: "no stderr line with \"\(needle)\" within \(Int(timeout)) s; stderr: \(errorText.suffix(800))")
    }

    /// Sends SIGKILL (a crash, not a shutdown) and waits for the process to end.
    public func kill() {
        if process.isRunning { process.kill() }
        process.waitUntilExit()
    }

    private func completeLine(containing needle: String, after offset: Int, includingUnterminated: Bool) -> String? {
        ConsoleLines.first(containing: needle, in: Array(consoleText.utf8.dropFirst(offset)), includingUnterminated: includingUnterminated)
    }

    /// Sends a command line and returns the first output line containing `expect` after it.
    @discardableResult
    public func command(_ line: String, expect: String, timeout: TimeInterval = 60) throws -> String {
        let offset = consoleText.utf8.count
        send(line + "\r")
        return try waitForLine(containing: expect, after: offset, timeout: timeout)
    }

    /// Waits for the process to end and returns its exit status.
    public func waitForExit(timeout: TimeInterval = 60) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        guard !process.isRunning else {
            process.terminate()
            throw Timeout(description: "process still running after \(Int(timeout)) s; console: \(consoleText.suffix(800))")
        }
        // Let the readers drain both pipes: a long answer (a hundred forks' JSON) may still be in
        // flight when the process has gone. A pipe a child process keeps open is given up on after
        // 2 s, but only while nothing waits in it unread: on a loaded host (a hundred VMs just
        // forked) the readers can be held off longer than that, and giving up then cut an answer short.
        let quiet = Date().addingTimeInterval(2), hangGuard = Date().addingTimeInterval(60)
        while Date() < hangGuard {
            lock.lock(); let closed = outputClosed && errorsClosed, reading = readsInFlight > 0; lock.unlock()
            if closed { break }
            if Date() >= quiet && !reading && unreadBytes(output) == 0 && unreadBytes(errors) == 0 { break }
            Thread.sleep(forTimeInterval: 0.005)
        }
        return (process.exitStatus ?? -1)
    }

    /// Bytes written into `pipe` and not yet read (FIONREAD).
    private func unreadBytes(_ pipe: Pipe) -> Int {
        var count: Int32 = 0
        return ioctl(pipe.fileHandleForReading.fileDescriptor, UInt(FIONREAD), &count) == 0 ? Int(count) : 0
    }

    /// Sends SIGTERM and waits for the process to end.
    public func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

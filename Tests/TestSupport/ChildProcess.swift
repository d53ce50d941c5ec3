import Foundation

/// A child process started with posix_spawn and reaped with waitpid, without Foundation's Process.
///
/// Foundation's Process reaps every child from one shared monitor; after `engram update` execs
/// inside a child VMM, that monitor was seen blocking in waitpid on the VMM, so no other child
/// of the test process was ever reaped. Each ChildProcess reaps only itself, never blocking.
final class ChildProcess: @unchecked Sendable {
    let processID: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `executable` with its standard input, output and error on the given descriptors.
    init(executable: String, arguments: [String], standardInput: Int32, standardOutput: Int32, standardError: Int32,
         closeInChild: [Int32], environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        posix_spawn_file_actions_adddup2(&actions, standardOutput, 1)
        posix_spawn_file_actions_adddup2(&actions, standardError, 2)
        for descriptor in closeInChild { posix_spawn_file_actions_addclose(&actions, descriptor) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The child starts with no signal blocked and default handlers, whatever the test thread
        // that spawned it had (test runner threads block signals; a child would inherit that).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // Variables for this child only: the test process's own environment is never changed.
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: executable]) }
        processID = pid
    }

    /// True until the child has exited (and been reaped here).
    var isRunning: Bool { exitStatus == nil }

    /// The exit status (128 + signal for a signal), once the child has exited.
    var exitStatus: Int32? {
        lock.lock(); defer { lock.unlock() }
        if status == nil {
            var raw: Int32 = 0
            if waitpid(processID, &raw, WNOHANG) == processID {
                status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
            }
        }
        return status
    }

    func terminate() { if isRunning { Glibc.kill(processID, SIGTERM) } }
    func kill() { if isRunning { Glibc.kill(processID, SIGKILL) } }

    func waitUntilExit() { while isRunning { Thread.sleep(forTimeInterval: 0.01) } }
}

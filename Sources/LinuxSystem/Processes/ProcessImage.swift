import CLinux
import Glibc
import SystemPackage

/// Replaces this process's image with another binary, keeping chosen descriptors open.
///
/// Not every library opens its descriptors close-on-exec (SwiftNIO's epoll descriptors and
/// accepted sockets are not), so right before exec every descriptor above standard error is
/// marked close-on-exec, then the flag is cleared on exactly the ones the next VMM needs (guest
/// memory, the control socket). A connection leaked into the new image would hang its client.
package enum ProcessImage {
    /// Sets or clears FD_CLOEXEC on `descriptor`; false if it is not open.
    @discardableResult
    package static func setCloseOnExec(_ descriptor: CInt, _ closeOnExec: Bool) -> Bool {
        fcntl(descriptor, F_SETFD, closeOnExec ? FD_CLOEXEC : 0) == 0
    }

    /// True if `descriptor` is open and will be closed by exec.
    package static func isCloseOnExec(_ descriptor: CInt) -> Bool? {
        let flags = fcntl(descriptor, F_GETFD)
        return flags < 0 ? nil : flags & FD_CLOEXEC != 0
    }

    /// Execs `path` with `arguments` (argv[1...]) and this environment, keeping `descriptors`
    /// open. Returns only if exec failed, with the reason; `descriptors` are close-on-exec again.
    ///
    /// Tearing down this process's address space and its VM is the slow part of an exec (tens
    /// of ms for GiBs of touched guest memory). A holder child that shares both (see
    /// `clinux_spawn_teardown_holder`) leaves that work to its own exit; its pid is appended to
    /// the arguments as `--teardown-holder PID`, for the new image to end it once the guest runs.
    package static func exec(_ path: String, arguments: [String], keeping descriptors: [CInt]) -> String {
        closeAllOnExec()
        for descriptor in descriptors { setCloseOnExec(descriptor, false) }
        let holder = clinux_spawn_teardown_holder()
        let all = arguments + (holder > 0 ? ["--teardown-holder", String(holder)] : [])
        let argv = unsafe ([path] + all).map { unsafe strdup($0) } + [nil]
        unsafe execv(path, argv)
        let reason = Errno(rawValue: errno).description
        unsafe argv.forEach { unsafe free($0) }
        for descriptor in descriptors { setCloseOnExec(descriptor, true) }
        if holder > 0 { endTeardownHolder(holder) }
        return reason
    }

    /// Starts `path arguments...` beside this process (a VMM that takes over while this one
    /// runs): standard input, output and error shared with this process, and `descriptor` as
    /// the child's descriptor `target`; nothing else leaks into it (every other descriptor is
    /// close-on-exec first, as before an exec). Returns the child's pid.
    /// `withoutConsole`: the child's standard input and output are /dev/null (a fork's child,
    /// which has a console log of its own), its standard error stays this process's.
    package static func spawnBeside(
        _ path: String, arguments: [String], handing descriptor: CInt, as target: CInt, withoutConsole: Bool = false
    ) throws(SystemError) -> pid_t {
        closeAllOnExec()
        var actions = unsafe posix_spawn_file_actions_t()
        unsafe posix_spawn_file_actions_init(&actions)
        defer { unsafe posix_spawn_file_actions_destroy(&actions) }
        if withoutConsole {
            unsafe posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            unsafe posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        // dup2 onto another number clears close-on-exec on the copy; the same number keeps it open itself.
        if descriptor == target {
            setCloseOnExec(descriptor, false)
        } else {
            unsafe posix_spawn_file_actions_adddup2(&actions, descriptor, target)
        }
        defer { if descriptor == target { setCloseOnExec(descriptor, true) } }
        // Marking close-on-exec above is not enough: another thread (the control server's event
        // loop, which accepts without SOCK_CLOEXEC) may open a descriptor before the spawn, and a
        // client connection leaked into the child never sees its end. The child closes them all.
        _ = unsafe clinux_spawn_close_from(&actions, target + 1)
        return try Subprocess.spawn(path, arguments: arguments, actions: &actions)
    }

    /// Ends the holder of the previous image's teardown (which then happens in the holder's
    /// exit, in the background) and reaps it.
    package static func endTeardownHolder(_ holder: pid_t) {
        kill(holder, SIGKILL)
        let reap: @Sendable () -> Void = { _ = Subprocess.waitForExit(holder) }
        if (try? NamedThread.spawnDetached(name: "reap-holder", role: .control, reap)) == nil { reap() }
    }

    /// Marks every descriptor above standard error close-on-exec.
    static func closeAllOnExec() {
        guard clinux_close_range_cloexec(3) != 0 else { return }
        // Before Linux 5.11: one by one, from the list of open descriptors (the limit may be a
        // million; the list is a few dozen).
        guard let directory = opendir("/proc/self/fd") else { return }
        defer { closedir(directory) }
        var open: [CInt] = []
        // SAFETY: readdir's entry is valid until the next readdir; d_name is copied out at once.
        while let entry = unsafe readdir(directory) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) { unsafe String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let descriptor = CInt(name), descriptor > 2 { open.append(descriptor) }
        }
        for descriptor in open { setCloseOnExec(descriptor, true) }
    }

    /// The path this process was started from, resolved now: after a package upgrade replaces
    /// the file, the path names the new binary while /proc/self/exe names the deleted old one.
    package static func executablePath() -> String {
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = unsafe buffer.withUnsafeMutableBytes { unsafe readlink("/proc/self/exe", $0.baseAddress!, $0.count - 1) }
        guard count > 0 else { return CommandLine.arguments.first ?? "engram" }
        let path = String(decoding: buffer[0..<count], as: UTF8.self)
        return path.hasSuffix(" (deleted)") ? String(path.dropLast(" (deleted)".count)) : path
    }
}

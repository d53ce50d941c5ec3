import CLinux

/// This process's environment variables.
package enum ProcessEnvironment {
    /// Removes each of `names` and overwrites its value in place, so neither this process's
    /// environment nor /proc/PID/environ (readable by the same user) nor processes it starts
    /// carry it: for secrets a long-lived VMM has already read.
    package static func scrub(_ names: [String]) {
        // SAFETY: the C string lives for the call; the shim only reads it.
        for name in names { unsafe clinux_scrub_environment(name) }
    }
}

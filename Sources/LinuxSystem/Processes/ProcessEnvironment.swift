import CLinux
import Glibc

/// This process's environment variables.
package enum ProcessEnvironment {
    /// The value of `name`, if set.
    package static func value(_ name: String) -> String? {
        // SAFETY: getenv's string is copied before anything can change the environment.
        unsafe getenv(name).map { unsafe String(cString: $0) }
    }

    /// Every variable ("NAME=VALUE") whose name starts with one of `prefixes`.
    package static func variables(prefixedBy prefixes: [String]) -> [String] {
        var found: [String] = []
        // SAFETY: environ is a NULL-terminated array of C strings, each copied as it is read.
        var entry = unsafe environ
        while let pointer = unsafe entry.pointee {
            let variable = unsafe String(cString: pointer)
            if prefixes.contains(where: variable.hasPrefix) { found.append(variable) }
            unsafe entry += 1
        }
        return found
    }

    /// Removes each of `names` and overwrites its value in place, so neither this process's
    /// environment nor /proc/PID/environ (readable by the same user) nor processes it starts
    /// carry it: for secrets a long-lived VMM has already read.
    package static func scrub(_ names: [String]) {
        // SAFETY: the C string lives for the call; the shim only reads it.
        for name in names { unsafe clinux_scrub_environment(name) }
    }
}

import CLinux
import Glibc

/// A program started in a jail: new mount and PID namespaces, the given network namespace and
/// cgroups, a pivoted root with a /proc of its own, a user and group without capabilities, and
/// no_new_privs. CLinux's Jail.c does the child's part, where only async-signal-safe calls may run.
package enum JailedProcess {
    package struct Configuration: Sendable {
        /// The jail's root directory, absolute; the program sees it as /.
        package var root: String
        /// The program, as a path inside the root.
        package var executable: String
        package var arguments: [String]
        package var environment: [String]
        /// Open cgroup.procs files the child joins first, so every thread it makes is counted.
        package var cgroupProcs: [CInt] = []
        /// An open network namespace file (/run/netns/NAME) to enter, or nil to stay in this one.
        package var networkNamespace: CInt? = nil
        /// Detach: a new session, standard streams on /dev/null.
        package var daemon = false
        package var user: UInt32
        package var group: UInt32

        package init(root: String, executable: String, arguments: [String], environment: [String], user: UInt32, group: UInt32) {
            self.root = root
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.user = user
            self.group = group
        }
    }

    /// Starts the jailed program; returns the pid (as this namespace sees it) of the jail's init,
    /// whose child the program is, once the program has exec'd. The init ends when the last
    /// process in the jail has, with that one's status. Afterwards SIGTERM, SIGINT, SIGHUP and
    /// SIGQUIT sent to this process go on to the init, which passes them to every process in the jail.
    package static func start(_ configuration: Configuration) throws(SystemError) -> pid_t {
        let nullDevice = configuration.daemon ? unsafe open("/dev/null", O_RDWR | O_CLOEXEC) : -1
        guard !configuration.daemon || nullDevice >= 0 else { throw .last("open", on: "/dev/null") }
        defer { if nullDevice >= 0 { close(nullDevice) } }
        var step: CInt = 0
        let pid = unsafe withCStrings(configuration.arguments) { arguments in
            unsafe withCStrings(configuration.environment) { environment in
                unsafe configuration.cgroupProcs.withUnsafeBufferPointer { procs in
                    // SAFETY: every pointer in the structure outlives the call, which copies nothing it keeps.
                    var jail = unsafe clinux_jail(
                        root: nil, executable: nil, arguments: arguments, environment: environment,
                        cgroup_procs: procs.baseAddress, cgroup_count: CInt(procs.count),
                        network_namespace: configuration.networkNamespace ?? -1, null_device: nullDevice,
                        uid: configuration.user, gid: configuration.group)
                    return unsafe configuration.root.withCString { root in
                        unsafe configuration.executable.withCString { executable in
                            unsafe jail.root = root
                            unsafe jail.executable = executable
                            return unsafe clinux_jail_spawn(&jail, &step)
                        }
                    }
                }
            }
        }
        guard pid < 0 else { return pid }
        throw .last(stepName(step), on: "the jail at \(configuration.root)")
    }

    /// Waits for `pid` to end; its exit status, or 128 + the signal that ended it (as a shell says).
    package static func wait(_ pid: pid_t) -> Int32 {
        var status: CInt = 0
        while unsafe waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    private static func stepName(_ step: CInt) -> String {
        switch UInt32(step) {
        case CLINUX_JAIL_CGROUP.rawValue: "join the cgroup (write cgroup.procs)"
        case CLINUX_JAIL_NETNS.rawValue: "enter the network namespace (setns)"
        case CLINUX_JAIL_PRIVATE_MOUNTS.rawValue: "make the mounts private"
        case CLINUX_JAIL_BIND_ROOT.rawValue: "bind the root onto itself"
        case CLINUX_JAIL_PIVOT.rawValue: "pivot_root into the root"
        case CLINUX_JAIL_PROC.rawValue: "mount /proc"
        case CLINUX_JAIL_SESSION.rawValue: "detach (setsid, /dev/null)"
        case CLINUX_JAIL_GROUPS.rawValue: "set the group (setgroups, setresgid)"
        case CLINUX_JAIL_BOUNDING_SET.rawValue: "drop the capability bounding set"
        case CLINUX_JAIL_USER.rawValue: "set the user (setresuid)"
        case CLINUX_JAIL_CAPABILITIES.rawValue: "clear the capabilities"
        case CLINUX_JAIL_NO_NEW_PRIVS.rawValue: "set no_new_privs"
        case CLINUX_JAIL_INIT.rawValue: "start the VMM beside the jail's init (fork)"
        case CLINUX_JAIL_EXEC.rawValue: "exec the VMM"
        default: "clone into new namespaces"
        }
    }

    /// Calls `body` with a NULL-terminated array of C strings copied from `strings`.
    private static func withCStrings<Result>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result) -> Result {
        let copies = unsafe strings.map { unsafe strdup($0) } + [nil]
        defer { for unsafe copy in unsafe copies { unsafe free(copy) } }
        return unsafe copies.withUnsafeBufferPointer { unsafe body($0.baseAddress!) }
    }
}

import LinuxSystem

/// The system calls each thread role may make, with the reason for each: the list the seccomp
/// filters are built from and docs/SECURITY.md prints (a test keeps the two equal).
/// Calls are listed most frequent first within a role, since a filter compares in order.
package enum SeccompPolicy {
    package struct Rule: Sendable {
        package let call: SystemCall
        package let reason: String
        /// For ioctl in a narrow role: the only requests allowed (nil: any).
        package let requests: [IoctlRequest]?
        init(_ call: SystemCall, _ reason: String, requests: [IoctlRequest]? = nil) {
            self.call = call
            self.reason = reason
            self.requests = requests
        }
    }

    /// What every thread does: run Swift and glibc, wait on locks, report an error, end.
    package static let everyThread: [Rule] = [
        Rule(.futex, "locks and condition waits"),
        Rule(.write, "error reports on standard error; writes to descriptors the role owns"),
        Rule(.mmap, "the allocator"),
        Rule(.munmap, "the allocator"),
        Rule(.madvise, "the allocator returns memory"),
        Rule(.mprotect, "the allocator; thread stacks' guard pages"),
        Rule(.mremap, "the allocator grows large blocks"),
        Rule(.brk, "the allocator"),
        Rule(.rt_sigprocmask, "threads block the signals the main thread handles"),
        Rule(.rt_sigreturn, "return from a signal handler (a vCPU's kick)"),
        Rule(.clock_gettime, "clocks, when the vDSO cannot answer"),
        Rule(.clock_nanosleep, "short waits"),
        Rule(.nanosleep, "short waits"),
        Rule(.sched_yield, "spinning locks back off"),
        Rule(.getpid, "thread and process ids"),
        Rule(.gettid, "thread and process ids"),
        Rule(.close, "descriptors are closed by whichever thread drops them last"),
        Rule(.getrandom, "hashing seeds and random ids"),
        Rule(.restart_syscall, "the kernel restarts an interrupted wait"),
        Rule(.seccomp, "a thread made by this one adds its own role's filter"),
        Rule(.exit, "a thread ends"),
        Rule(.exit_group, "the process ends"),
    ]

    /// Each narrow role's own calls, beyond `everyThread`. The control role has every call of
    /// every role and `controlOnly`.
    package static let roles: [(ThreadRole, [Rule])] = [
        (.vcpu, [
            Rule(.ioctl, "KVM_RUN; its registers when it fails; the interrupt lines, irqfds, ioeventfds and tap offloads of devices the driver starts or resets",
                 requests: [.kvmRun, .kvmGetRegisters, .kvmIRQLine, .kvmIRQFD, .kvmIOEventFD, .tapSetOffload, .tapSetHeaderSize]),
            Rule(.read, "event counters"),
            Rule(.tgkill, "kicks another vCPU out of KVM_RUN"),
            Rule(.rt_sigtimedwait, "takes a pending kick"),
            Rule(.ppoll, "waits while the VM is paused"),
            Rule(.poll, "waits while the VM is paused"),
            Rule(.epoll_ctl, "a device the driver starts joins the I/O thread's epoll"),
        ]),
        (.deviceIO, [
            Rule(.epoll_wait, "waits for queue notifications, taps and sockets"),
            Rule(.epoll_pwait, "waits for queue notifications, taps and sockets"),
            Rule(.read, "ioeventfd counters, tap frames, vsock streams"),
            Rule(.readv, "tap frames into guest buffers"),
            Rule(.writev, "tap frames from guest buffers"),
            Rule(.preadv, "disk reads into guest buffers"),
            Rule(.pwritev, "disk writes from guest buffers"),
            Rule(.pread64, "disk reads"),
            Rule(.pwrite64, "disk writes"),
            Rule(.fdatasync, "a guest's FLUSH"),
            Rule(.fallocate, "DISCARD and WRITE_ZEROES punch holes"),
            Rule(.ioctl, "interrupt lines where irqfd is not used; tap offloads", requests: [.kvmIRQLine, .tapSetOffload]),
            Rule(.epoll_ctl, "watches sockets as vsock connections come and go"),
            Rule(.accept4, "host programs connect to the vsock socket"),
            Rule(.socket, "guest vsock connections to host ports"),
            Rule(.connect, "guest vsock connections to host ports"),
            Rule(.sendto, "vsock streams"),
            Rule(.recvfrom, "vsock streams"),
            Rule(.shutdown, "vsock streams end one way"),
            Rule(.fcntl, "non-blocking sockets"),
            Rule(.timerfd_settime, "rate limiters' refills"),
        ]),
        (.pageFault, [
            Rule(.ioctl, "installs pages, wakes faulting threads, and unregisters memory once all of it is present",
                 requests: [.userfaultCopy, .userfaultZeroPage, .userfaultWake, .userfaultUnregister]),
            Rule(.read, "userfaultfd messages; snapshot files"),
            Rule(.poll, "waits for faults and replies"),
            Rule(.ppoll, "waits for faults and replies"),
            Rule(.pread64, "pages from snapshot files"),
            Rule(.preadv, "pages from snapshot files"),
            Rule(.socket, "connections to page servers and object stores"),
            Rule(.connect, "connections to page servers and object stores"),
            Rule(.sendto, "page requests"),
            Rule(.recvfrom, "page replies"),
            Rule(.sendmsg, "page requests"),
            Rule(.recvmsg, "page replies"),
            Rule(.setsockopt, "TCP_NODELAY and timeouts on page connections"),
            Rule(.getsockopt, "a non-blocking connect's result"),
            Rule(.fcntl, "non-blocking connections"),
            Rule(.openat, "the object store's chunk cache"),
            Rule(.fstat, "the object store's chunk cache"),
            Rule(.newfstatat, "the object store's chunk cache"),
            Rule(.setpriority, "the background fill yields to fault handling"),
            Rule(.tgkill, "stops the vCPUs when a page cannot be had (corrupt, or its source gone)"),
            Rule(.utimensat, "a chunk read from the cache is marked recently used"),
            Rule(.unlink, "a damaged chunk leaves the cache"),
            Rule(.clone3, "fetches ahead of the fill run on threads of their own"),
            Rule(.clone, "fetches ahead of the fill run on threads of their own"),
            Rule(.set_robust_list, "fetches ahead of the fill run on threads of their own"),
            Rule(.rseq, "fetches ahead of the fill run on threads of their own"),
            Rule(.prctl, "fetch threads are named"),
            Rule(.sigaltstack, "fetch threads start"),
            Rule(.getsockname, "a page connection's addresses in messages"),
            Rule(.getpeername, "a page connection's addresses in messages"),
        ]),
        (.migration, [
            Rule(.sendto, "the migration stream"),
            Rule(.recvfrom, "the migration stream"),
            Rule(.sendmsg, "the migration stream"),
            Rule(.recvmsg, "the migration stream"),
            Rule(.ioctl, "dirty logs and the vCPUs' and devices' state"),
            Rule(.read, "pages and handshakes"),
            Rule(.pread64, "pages from memory files"),
            Rule(.poll, "waits with deadlines"),
            Rule(.ppoll, "waits with deadlines"),
            Rule(.tgkill, "pauses the vCPUs"),
            Rule(.setsockopt, "socket options on the stream"),
            Rule(.getsockopt, "a non-blocking connect's result"),
            Rule(.fcntl, "non-blocking streams"),
            Rule(.shutdown, "ends the stream"),
            Rule(.socket, "the source connects to the destination"),
            Rule(.connect, "the source connects to the destination"),
            Rule(.getsockname, "the local address a link reports"),
            Rule(.lseek, "finds memory's data and holes (SEEK_DATA, SEEK_HOLE) to send only data"),
            Rule(.preadv, "pages from memory files"),
            Rule(.fdatasync, "the disks are synced before the state is sent"),
            Rule(.fstat, "memory files' sizes"),
            Rule(.getpeername, "the peer's address in messages"),
            Rule(.clone3, "the source starts its post-copy page server's thread"),
            Rule(.clone, "the source starts its post-copy page server's thread"),
            Rule(.set_robust_list, "the source starts its post-copy page server's thread"),
            Rule(.rseq, "the source starts its post-copy page server's thread"),
            Rule(.prctl, "the post-copy page server's thread is named"),
            Rule(.bind, "the source's post-copy page server listens"),
            Rule(.listen, "the source's post-copy page server listens"),
            Rule(.accept4, "the destination's post-copy connections"),
            Rule(.accept, "the destination's post-copy connections"),
        ] + pageServing),
        (.pageServer, pageServing),
        (.display, [
            Rule(.poll, "waits for viewers and framebuffer changes"),
            Rule(.ppoll, "waits for viewers and framebuffer changes"),
            Rule(.read, "viewers' messages"),
            Rule(.sendto, "framebuffer updates"),
            Rule(.recvfrom, "viewers' messages"),
            Rule(.accept4, "new viewers"),
            Rule(.setsockopt, "socket options"),
            Rule(.fcntl, "non-blocking sockets"),
            Rule(.shutdown, "ends a viewer's connection"),
            Rule(.getpeername, "the viewer's address in messages"),
            Rule(.clone3, "a thread per viewer"),
            Rule(.clone, "a thread per viewer"),
            Rule(.set_robust_list, "a thread per viewer"),
            Rule(.rseq, "a thread per viewer"),
            Rule(.prctl, "viewer threads are named"),
            Rule(.setpriority, "the change poller yields to the viewers"),
            Rule(.getsockname, "the address a viewer connected to"),
            Rule(.socket, "keys typed in a viewer go to the VM's control socket"),
            Rule(.connect, "keys typed in a viewer go to the VM's control socket"),
        ]),
    ]

    /// A page server's connection: `engram serve`'s, and a post-copy source's (migration role).
    static let pageServing: [Rule] = [
            Rule(.sendto, "pages to the client"),
            Rule(.recvfrom, "the client's requests"),
            Rule(.sendmsg, "pages to the client"),
            Rule(.recvmsg, "the client's requests"),
            Rule(.read, "requests"),
            Rule(.pread64, "pages from the snapshot"),
            Rule(.preadv, "pages from the snapshot"),
            Rule(.poll, "waits with deadlines"),
            Rule(.ppoll, "waits with deadlines"),
            Rule(.setsockopt, "socket options"),
            Rule(.fcntl, "non-blocking streams"),
            Rule(.shutdown, "ends the stream"),
            Rule(.openat, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.fstat, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.newfstatat, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.flock, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.fchmod, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.pwrite64, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.fsync, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.link, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.linkat, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.rename, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.unlink, "a client's working set is stored beside the snapshot (written whole, then named)"),
            Rule(.access, "checks the snapshot's files before serving"),
            Rule(.lseek, "reads a stored working set"),
            Rule(.getdents64, "finds a diff's parents in the snapshot's directory"),
            Rule(.setpriority, "a restore's background fill is served at low priority"),
    ]

    /// What only the control role does: set up and tear down VMs, files and sockets; snapshots,
    /// live updates and forks (exec and new processes).
    package static let controlOnly: [Rule] = [
        Rule(.ioctl, "KVM set-up and state; terminal modes"),
        Rule(.read, "files, sockets and the console"),
        Rule(.openat, "kernels, snapshots, disks, memory files, /dev/kvm"),
        Rule(.open, "older glibc paths open files with open(2)"),
        Rule(.epoll_wait, "the control API's event loop"),
        Rule(.epoll_pwait, "the control API's event loop"),
        Rule(.epoll_ctl, "the control API's event loop"),
        Rule(.epoll_create1, "event loops"),
        Rule(.eventfd2, "event loops' and devices' notifiers"),
        Rule(.timerfd_create, "event loops' timers; rate limiters"),
        Rule(.timerfd_settime, "event loops' timers"),
        Rule(.pipe2, "event loops' wake-ups; child processes' output"),
        Rule(.fstat, "file sizes and kinds"),
        Rule(.newfstatat, "file sizes and kinds"),
        Rule(.statx, "file sizes and kinds"),
        Rule(.lseek, "data and hole extents (SEEK_DATA, SEEK_HOLE)"),
        Rule(.pread64, "snapshot files"),
        Rule(.pwrite64, "snapshot files"),
        Rule(.ftruncate, "snapshot and memory files get their size"),
        Rule(.fsync, "snapshots reach the disk before they are named"),
        Rule(.rename, "snapshots appear whole (write, then rename)"),
        Rule(.renameat, "snapshots appear whole (write, then rename)"),
        Rule(.renameat2, "snapshots appear whole (write, then rename)"),
        Rule(.unlink, "temporary files and stale sockets"),
        Rule(.unlinkat, "temporary files and stale sockets"),
        Rule(.mkdir, "the object store's cache"),
        Rule(.getdents64, "directory listings (descriptors to close, caches)"),
        Rule(.readlink, "the executable's path for a live update"),
        Rule(.access, "checks a path before it is used"),
        Rule(.faccessat, "checks a path before it is used"),
        Rule(.faccessat2, "checks a path before it is used"),
        Rule(.fchmod, "files and sockets Engram creates are mode 0600"),
        Rule(.umask, "files and sockets Engram creates are mode 0600"),
        Rule(.flock, "one writer per memory file"),
        Rule(.memfd_create, "guest memory"),
        Rule(.userfaultfd, "lazy restore and post-copy"),
        Rule(.socket, "the control API, migration, page and object-store connections"),
        Rule(.bind, "listening sockets"),
        Rule(.listen, "listening sockets"),
        Rule(.accept, "connections"),
        Rule(.accept4, "connections"),
        Rule(.connect, "connections"),
        Rule(.getsockname, "a socket's own address"),
        Rule(.getpeername, "a peer's address in messages"),
        Rule(.socketpair, "links to fork children and a live update's new process"),
        Rule(.sendmsg, "descriptors handed over (SCM_RIGHTS)"),
        Rule(.recvmsg, "descriptors handed over (SCM_RIGHTS)"),
        Rule(.dup, "descriptors kept across exec"),
        Rule(.dup2, "descriptors kept across exec"),
        Rule(.dup3, "descriptors kept across exec"),
        Rule(.clone, "threads, and the processes of forks and live updates"),
        Rule(.clone3, "threads, and the processes of forks and live updates"),
        Rule(.vfork, "posix_spawn"),
        Rule(.execve, "live update runs the new binary"),
        Rule(.wait4, "reaps child processes"),
        Rule(.waitid, "reaps child processes"),
        Rule(.kill, "ends fork children and the helper of a live update"),
        Rule(.rt_sigaction, "signal handlers"),
        Rule(.rt_sigtimedwait, "the signal-watching thread"),
        Rule(.sigaltstack, "signal stacks"),
        Rule(.set_robust_list, "new threads"),
        Rule(.rseq, "new threads"),
        Rule(.prctl, "thread names; parent-death signals for children"),
        Rule(.sched_getaffinity, "how many processors to use"),
        Rule(.setpriority, "bulk work yields to fault handling"),
        Rule(.getrlimit, "the descriptor limit"),
        Rule(.prlimit64, "the descriptor limit"),
        Rule(.setrlimit, "the descriptor limit"),
        Rule(.uname, "the kernel version in reports"),
        Rule(.getcwd, "relative paths"),
        Rule(.getuid, "who owns a file"),
        Rule(.geteuid, "who owns a file"),
        Rule(.getgid, "who owns a file"),
        Rule(.getegid, "who owns a file"),
        Rule(.getppid, "a child notices its parent is gone"),
        Rule(.sysinfo, "memory figures"),
        Rule(.statfs, "the kind of file system under a path (hugetlbfs, tmpfs)"),
        Rule(.fstatfs, "the kind of file system under a descriptor"),
        Rule(.close_range, "a new process keeps only the descriptors handed to it"),
        Rule(.getpgrp, "a new binary given as a shell script (a wrapper) starts under the filters too"),
        Rule(.pipe, "a new binary given as a shell script starts under the filters too"),
        Rule(.listxattr, "Foundation reads a file's attributes (the object store's reads)"),
        Rule(.llistxattr, "Foundation reads a file's attributes"),
        Rule(.getxattr, "Foundation reads a file's attributes"),
        Rule(.lgetxattr, "Foundation reads a file's attributes"),
        Rule(.membarrier, "the Swift runtime"),
        Rule(.arch_prctl, "a live update's new binary starts (thread-local storage)"),
        Rule(.set_tid_address, "a live update's new binary starts"),
        Rule(.chmod, "files and sockets Engram creates are mode 0600"),
        Rule(.rmdir, "temporary directories"),
        Rule(.link, "snapshots appear whole (an unnamed file gets its name)"),
        Rule(.linkat, "snapshots appear whole (an unnamed file gets its name)"),
        Rule(.epoll_create, "event loops"),
        Rule(.writev, "files and sockets"),
    ]

    /// Every role's program. `audit` logs a call outside the list instead of stopping.
    package static func programs(audit: Bool) -> [ThreadRole: SeccompProgram] {
        var programs: [ThreadRole: SeccompProgram] = [:]
        var union = everyThread.map(\.call) + controlOnly.map(\.call)
        for (role, rules) in roles {
            let allowances = (rules + everyThread).map { SeccompProgram.Allowance($0.call, requests: $0.requests) }
            programs[role] = SeccompProgram(allowing: allowances, otherwise: audit ? .log : .trap(role: role.rawValue))
            union += rules.map(\.call)
        }
        // Control sets up and tears down everything: its ioctls are not limited to a list.
        // The control list starts with the calls its threads make most.
        let control = [SystemCall.futex, .ioctl, .read, .write, .epoll_wait] + union
        programs[.control] = SeccompProgram(allowing: control, otherwise: audit ? .log : .trap(role: ThreadRole.control.rawValue))
        return programs
    }
}

extension SeccompPolicy {
    /// The lists as docs/SECURITY.md prints them, between its seccomp-filters markers.
    package static func markdown() -> String {
        func table(_ rules: [Rule]) -> String {
            var reasons: [(SystemCall, [String])] = []
            for rule in rules {
                let reason = rule.requests.map { "\(rule.reason) (only \($0.map { "`\($0)`" }.joined(separator: ", ")))" } ?? rule.reason
                if let index = reasons.firstIndex(where: { $0.0 == rule.call }) {
                    if !reasons[index].1.contains(reason) { reasons[index].1.append(reason) }
                } else {
                    reasons.append((rule.call, [reason]))
                }
            }
            return (["| System call | Why |", "|---|---|"] + reasons.map { "| `\($0.0)` | \($0.1.joined(separator: "; ")) |" })
                .joined(separator: "\n")
        }
        var sections = ["**Every thread** (each role's filter starts with these):\n\n" + table(everyThread)]
        for (role, rules) in roles {
            sections.append("**\(role.description.prefix(1).uppercased() + role.description.dropFirst())** threads (`\(role)`), beyond every thread's:\n\n" + table(rules))
        }
        sections.append("**Control** (the main thread, the control API, helpers; every call above, and these):\n\n" + table(controlOnly))
        return sections.joined(separator: "\n\n")
    }
}

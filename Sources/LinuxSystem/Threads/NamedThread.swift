import CLinux
import Glibc
import SystemPackage

/// A dedicated, named OS thread (not a task or a queue), for work that blocks in system calls:
/// vCPUs, userfault handlers, page fills, VNC viewers, device I/O. The one place Engram calls
/// pthread_create.
package struct NamedThread: Sendable {
    private let handle: pthread_t

    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private init(handle: pthread_t) { self.handle = handle }

    /// Starts `body` on a new joinable thread named `name` (shown by top -H and in /proc; the
    /// kernel keeps 15 characters), under `role`'s seccomp filter when filters are on.
    package static func spawn(name: String, role: ThreadRole, _ body: @escaping @Sendable () -> Void) throws(SystemError) -> NamedThread {
        let start = unsafe Unmanaged.passRetained(Start {
            _ = unsafe clinux_set_thread_name(String(name.prefix(15)))
            ThreadFilters.enter(role)
            body()
        })
        var thread = pthread_t()
        // SAFETY: the retained Start is released exactly once, by the new thread (or below if it never starts).
        let result = unsafe pthread_create(&thread, nil, { context in
            let start = unsafe Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            start.body()
            return nil
        }, start.toOpaque())
        guard result == 0 else {
            unsafe start.release()
            throw SystemError("pthread_create", on: "thread \(name)", Errno(rawValue: result))
        }
        return NamedThread(handle: thread)
    }

    /// True when called on this thread.
    package var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }

    /// Waits for the thread to end. Call once, from another thread.
    package func join() {
        precondition(!isCurrent, "a thread cannot join itself")
        pthread_join(handle, nil)
    }

    /// Lets the thread end on its own; it cannot be joined afterwards.
    package func detach() { pthread_detach(handle) }

    /// Starts `body` on a new thread that ends on its own (never joined).
    package static func spawnDetached(name: String, role: ThreadRole, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        try spawn(name: name, role: role, body).detach()
    }

    /// The kernel's id for the calling thread (gettid), for tgkill and setpriority.
    package static var currentThreadID: CInt { clinux_gettid() }

    /// Lowers the calling thread's CPU priority (nice `niceness`), so bulk work yields to the
    /// threads that serve faults and run vCPUs; a failure leaves the priority as it was.
    package static func lowerCurrentPriority(to niceness: CInt = 10) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(clinux_gettid()), niceness)
    }

    /// Lowers every thread of this process to the lowest priority (nice 19), for a process about
    /// to end whose exit has work left (unmapping gigabytes of guest memory) that should yield to
    /// what runs beside it: whichever thread exits last does it. Failures leave a thread as it was.
    package static func lowerWholeProcessPriority() {
        for name in FileSystem.entries(of: "/proc/self/task") ?? [] {
            guard let thread = id_t(name) else { continue }
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), thread, 19)
        }
    }
}

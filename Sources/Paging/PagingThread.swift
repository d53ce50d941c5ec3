import CLinux
import Glibc
import SystemPackage

/// A joinable OS thread for the fault handler or the background fill.
///
/// Not a task or a queue: both block in poll(2), pread(2) and ioctl(2), and `stop` must know
/// they have finished before the regions go away. (Machine's OSThread starts detached threads;
/// this is the same pattern plus join.)
package struct PagingThread: Sendable {
    private let handle: pthread_t

    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private init(handle: pthread_t) { self.handle = handle }

    /// Starts `body` on a new thread named `name` (shown by top -H and in /proc).
    package static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(PagingError) -> PagingThread {
        let start = unsafe Unmanaged.passRetained(Start {
            _ = unsafe clinux_set_thread_name(String(name.prefix(15)))
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
            throw .thread(name: name, Errno(rawValue: result))
        }
        return PagingThread(handle: thread)
    }

    /// True when called on this thread.
    package var isCurrent: Bool { pthread_equal(handle, pthread_self()) != 0 }

    /// Waits for the thread to end. Call once; never on the thread itself.
    package func join() {
        precondition(!isCurrent, "a paging thread cannot join itself")
        pthread_join(handle, nil)
    }

    /// Lowers the calling thread's CPU priority (nice `niceness`), so bulk work yields to the
    /// threads that serve faults and run vCPUs; a failure leaves the priority as it was.
    package static func lowerCurrentPriority(to niceness: CInt = 10) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(clinux_gettid()), niceness)
    }

    /// Lets the thread end on its own (for a thread that would otherwise join itself).
    package func detach() { pthread_detach(handle) }
}

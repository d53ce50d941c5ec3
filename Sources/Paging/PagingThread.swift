import CLinux
import Glibc
import GuestMemory

/// A joinable OS thread for the fault handler or the background fill.
///
/// Not a task or a queue: both block in poll(2), pread(2) and ioctl(2), and `stop` must know
/// they have finished before the regions go away.
package struct PagingThread: Sendable {
    private let thread: NamedThread

    /// Starts `body` on a new thread named `name` (shown by top -H and in /proc).
    package static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(PagingError) -> PagingThread {
        do { return PagingThread(thread: try NamedThread.spawn(name: name, body)) } catch { throw .thread(name: name, error) }
    }

    /// True when called on this thread.
    package var isCurrent: Bool { thread.isCurrent }

    /// Waits for the thread to end. Call once; never on the thread itself.
    package func join() { thread.join() }

    /// Lowers the calling thread's CPU priority (nice `niceness`), so bulk work yields to the
    /// threads that serve faults and run vCPUs; a failure leaves the priority as it was.
    package static func lowerCurrentPriority(to niceness: CInt = 10) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(clinux_gettid()), niceness)
    }

    /// Lets the thread end on its own (for a thread that would otherwise join itself).
    package func detach() { thread.detach() }
}

import CLinux
import Glibc
import SystemPackage

/// A joinable OS thread: the acceptor, the change poller and one per client block in accept,
/// poll and send, and `stop` must know they have ended.
struct DisplayThread: Sendable {
    private let handle: pthread_t

    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread named `name` (shown by top -H and in /proc).
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(DisplayError) -> DisplayThread {
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
        return DisplayThread(handle: thread)
    }

    private init(handle: pthread_t) { self.handle = handle }

    /// Waits for the thread to end. Call once, from another thread.
    func join() { pthread_join(handle, nil) }

    /// Lets the thread end on its own.
    func detach() { pthread_detach(handle) }
}

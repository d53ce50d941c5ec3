import CLinux
import Glibc

/// A dedicated OS thread (not a task or a queue): vCPUs and device back-ends block in system calls.
enum OSThread {
    private final class Start {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new detached thread named `name` (shown by top -H and in /proc).
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(MachineError) {
        let start = unsafe Unmanaged.passRetained(Start {
            _ = unsafe clinux_set_thread_name(String(name.prefix(15)))
            body()
        })
        var thread = pthread_t()
        // SAFETY: the retained Start is released exactly once, by the new thread.
        let result = unsafe pthread_create(&thread, nil, { context in
            let start = unsafe Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
            start.body()
            return nil
        }, start.toOpaque())
        guard result == 0 else {
            unsafe start.release()
            throw .thread(.init(rawValue: result))
        }
        pthread_detach(thread)
    }

    /// The kernel's id for the calling thread, for tgkill.
    static var currentThreadID: CInt { clinux_gettid() }
}

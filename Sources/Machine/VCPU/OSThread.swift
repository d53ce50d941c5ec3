import CLinux
import GuestMemory

/// A dedicated OS thread (not a task or a queue): vCPUs and device back-ends block in system calls.
enum OSThread {
    /// Starts `body` on a new detached thread named `name` (shown by top -H and in /proc).
    static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(MachineError) {
        do { try NamedThread.spawn(name: name, body).detach() } catch { throw .thread(error) }
    }

    /// The kernel's id for the calling thread, for tgkill.
    static var currentThreadID: CInt { clinux_gettid() }
}

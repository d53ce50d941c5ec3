import LinuxSystem
import Glibc

/// SIGINT, SIGTERM and SIGHUP end the VM in an orderly way (terminal restored, socket removed).
///
/// They are blocked in every thread and taken by one watcher thread with sigwait, so no
/// handler runs in the middle of a vCPU exit.
package enum TerminationSignals {
    static let watched = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the signals in the calling thread and every thread it starts later: call first thing.
    package static func block() {
        var set = sigset_t()
        _ = unsafe sigemptyset(&set)
        for signal in watched { _ = unsafe sigaddset(&set, signal) }
        _ = unsafe pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts a thread that calls `handler` with each signal received.
    package static func watch(_ handler: @escaping @Sendable (Int32) -> Void) throws(MachineError) {
        do throws(SystemCallError) {
            try NamedThread.spawnDetached(name: "signals") {
                var set = sigset_t()
                _ = unsafe sigemptyset(&set)
                for signal in watched { _ = unsafe sigaddset(&set, signal) }
                while true {
                    var received: Int32 = 0
                    if unsafe sigwait(&set, &received) == 0 { handler(received) }
                }
            }
        } catch { throw .thread(error) }
    }
}

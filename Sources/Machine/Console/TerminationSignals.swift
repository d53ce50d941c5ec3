import LinuxSystem
import Glibc

/// SIGINT, SIGTERM and SIGHUP end the VM in an orderly way (terminal restored, socket removed).
///
/// They are blocked in every thread and taken by one watcher thread with sigwait, so no
/// handler runs in the middle of a vCPU exit.
package enum TerminationSignals {
    static let watched = [SIGINT, SIGTERM, SIGHUP]

    /// Blocks the signals in the calling thread and every thread it starts later: call first thing.
    package static func block() { ProcessSignals.block(watched) }

    /// Starts a thread that calls `handler` with each signal received.
    package static func watch(_ handler: @escaping @Sendable (Int32) -> Void) throws(MachineError) {
        do throws(SystemError) {
            try NamedThread.spawnDetached(name: "signals", role: .control) {
                while true { handler(ProcessSignals.wait(for: watched)) }
            }
        } catch { throw .thread(error) }
    }
}

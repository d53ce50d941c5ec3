import CLinux
import Glibc

/// Signals as Engram uses them: termination signals blocked everywhere and taken by one
/// watcher thread with sigwait (so no handler runs in the middle of a vCPU exit), and a
/// no-op signal sent to one thread to interrupt a blocking call (a vCPU's KVM_RUN).
package enum ProcessSignals {
    /// Blocks `signals` in the calling thread and every thread it starts later.
    package static func block(_ signals: [Int32]) { mask(SIG_BLOCK, signals) }

    /// Unblocks `signals` in the calling thread (a parent may have left them blocked).
    package static func unblockInCurrentThread(_ signals: [Int32]) { mask(SIG_UNBLOCK, signals) }

    /// Waits until one of `signals` (blocked in every thread) is pending, takes it and returns it.
    package static func wait(for signals: [Int32]) -> Int32 {
        var set = sigset_t()
        _ = unsafe sigemptyset(&set)
        for signal in signals { _ = unsafe sigaddset(&set, signal) }
        while true {
            var received: Int32 = 0
            // SAFETY: the set and the answer are locals.
            if unsafe sigwait(&set, &received) == 0 { return received }
        }
    }

    /// Installs a handler that does nothing for `signal`, without SA_RESTART: a blocking system
    /// call in the thread that receives it returns EINTR. Once per process.
    package static func installInterruptingHandler(_ signal: Int32) {
        var action = sigaction()
        unsafe action.__sigaction_handler.sa_handler = { _ in }
        _ = unsafe sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        // SAFETY: the action is a local read by the call.
        _ = unsafe sigaction(signal, &action, nil)
    }

    /// Sends `signal` to thread `threadID` (a `NamedThread.currentThreadID`) of this process.
    package static func send(_ signal: Int32, toThread threadID: CInt) {
        _ = clinux_tgkill(getpid(), threadID, signal)
    }

    private static func mask(_ how: Int32, _ signals: [Int32]) {
        var set = sigset_t()
        _ = unsafe sigemptyset(&set)
        for signal in signals { _ = unsafe sigaddset(&set, signal) }
        // SAFETY: the set is a local read by the call.
        _ = unsafe pthread_sigmask(how, &set, nil)
    }
}

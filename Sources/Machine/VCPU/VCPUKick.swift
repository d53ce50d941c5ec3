import CLinux
import Glibc

/// Kicks a vCPU thread out of KVM_RUN with a signal whose handler does nothing.
///
/// Paired with `immediate_exit`, so a kick that lands outside KVM_RUN is not lost.
enum VCPUKick {
    static let signal = SIGUSR2

    /// Installs the no-op handler without SA_RESTART, so KVM_RUN returns EINTR. Once per process.
    static func installHandler() {
        var action = sigaction()
        unsafe action.__sigaction_handler.sa_handler = { _ in }
        _ = unsafe sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        _ = unsafe sigaction(signal, &action, nil)
    }

    /// Unblocks the kick signal in the calling vCPU thread: a parent may have left it blocked in
    /// the mask this process inherited, and a blocked kick would leave a pause waiting forever.
    static func unblockInCurrentThread() {
        var set = sigset_t()
        _ = unsafe sigemptyset(&set)
        _ = unsafe sigaddset(&set, signal)
        _ = unsafe pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Sends the kick to thread `threadID` of this process.
    static func kick(threadID: CInt) {
        _ = clinux_tgkill(getpid(), threadID, signal)
    }
}

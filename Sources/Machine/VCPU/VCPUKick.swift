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

    /// Sends the kick to thread `threadID` of this process.
    static func kick(threadID: CInt) {
        _ = clinux_tgkill(getpid(), threadID, signal)
    }
}

import Glibc
import LinuxSystem

/// Kicks a vCPU thread out of KVM_RUN with a signal whose handler does nothing.
///
/// Paired with `immediate_exit`, so a kick that lands outside KVM_RUN is not lost.
enum VCPUKick {
    static let signal = SIGUSR2

    /// Installs the no-op handler without SA_RESTART, so KVM_RUN returns EINTR. Once per process.
    static func installHandler() { ProcessSignals.installInterruptingHandler(signal) }

    /// Unblocks the kick signal in the calling vCPU thread: a parent may have left it blocked in
    /// the mask this process inherited, and a blocked kick would leave a pause waiting forever.
    static func unblockInCurrentThread() { ProcessSignals.unblockInCurrentThread([signal]) }

    /// Sends the kick to thread `threadID` of this process.
    static func kick(threadID: CInt) { ProcessSignals.send(signal, toThread: threadID) }
}

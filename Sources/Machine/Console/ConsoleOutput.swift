import Glibc
import SystemPackage

/// Where the guest's serial output goes: standard output and, optionally, a log file (mode 0600).
final class ConsoleOutput: Sendable {
    private let logDescriptor: CInt

    /// Opens the log, emptied unless `append` (a live update continues the previous VMM's log).
    init(logPath: String?, append: Bool = false) throws(MachineError) {
        guard let logPath else { logDescriptor = -1; return }
        let fd = unsafe open(logPath, O_WRONLY | O_CREAT | (append ? 0 : O_TRUNC) | O_CLOEXEC | O_APPEND, 0o600)
        guard fd >= 0 else { throw .invalidConfiguration("cannot open console log \(logPath): \(Errno(rawValue: errno))") }
        logDescriptor = fd
    }

    deinit { if logDescriptor >= 0 { close(logDescriptor) } }

    /// Writes one byte the guest transmitted. On the vCPU thread: a plain write, no buffering, no allocation.
    func write(_ byte: UInt8) {
        Self.put(byte, to: STDOUT_FILENO)
        if logDescriptor >= 0 { Self.put(byte, to: logDescriptor) }
    }

    /// One byte, retried when a vCPU kick (a signal) interrupts the write, so no output is lost.
    private static func put(_ byte: UInt8, to descriptor: CInt) {
        var value = byte
        while unsafe Glibc.write(descriptor, &value, 1) < 0 && errno == EINTR {}
    }
}

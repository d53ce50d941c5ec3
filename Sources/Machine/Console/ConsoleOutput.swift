import LinuxSystem
import SystemPackage

/// Where the guest's serial output goes: standard output and, optionally, a log file (mode 0600).
final class ConsoleOutput: Sendable {
    private let log: OwnedFileDescriptor?

    /// Opens the log, emptied unless `append` (a live update continues the previous VMM's log).
    init(logPath: String?, append: Bool = false) throws(MachineError) {
        guard let logPath else { log = nil; return }
        do {
            log = try OwnedFileDescriptor.open(
                logPath, .writeOnly, options: append ? [.create, .append] : [.create, .append, .truncate], permissions: [.ownerReadWrite])
        } catch { throw .consoleLog(path: logPath, error.errno) }
    }

    /// Writes one byte the guest transmitted. On the vCPU thread: a plain write, no buffering, no allocation.
    func write(_ byte: UInt8) {
        FileDescriptor.standardOutput.writeByte(byte)
        log?.descriptor.writeByte(byte)
    }
}

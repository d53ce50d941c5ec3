import Foundation

/// Child processes to kill when the test process exits: a QEMU guest or a SeaweedFS server kept
/// by a static, or by a test scope that never ended, must not outlive the run.
enum ExitReaper {
    nonisolated(unsafe) static var pending: Set<pid_t> = []
    static let lock = NSLock()
    static let installed: Void = { atexit { ExitReaper.killAll() } }()

    static func register(_ pid: pid_t) {
        lock.lock(); defer { lock.unlock() }
        _ = installed
        pending.insert(pid)
    }

    static func unregister(_ pid: pid_t) {
        lock.lock(); defer { lock.unlock() }
        pending.remove(pid)
    }

    static func killAll() {
        lock.lock(); defer { lock.unlock() }
        for pid in pending { kill(pid, SIGKILL) }
        pending.removeAll()
    }
}

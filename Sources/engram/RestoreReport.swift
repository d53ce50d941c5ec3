import LinuxSystem
import ControlAPI
import Synchronization

/// What GET /vm/memory/stats says about a restore: its source, mode, and how long it took.
final class RestoreReport: Sendable {
    let snapshot: String
    let mode: String
    let chainLength: Int
    private let milliseconds = Mutex<Double>(0)

    init(snapshot: String, mode: String, chainLength: Int) {
        self.snapshot = snapshot
        self.mode = mode
        self.chainLength = chainLength
    }

    /// Records the time from the start of the command until the vCPUs start.
    func finished(after duration: Duration) {
        milliseconds.withLock { $0 = duration.inMilliseconds }
    }

    var millisecondsText: String {
        let value = milliseconds.withLock { $0 }
        return "\(Double(Int(value * 100)) / 100) ms"
    }

    var info: RestoreInfo {
        RestoreInfo(snapshot: snapshot, mode: mode, chainLength: chainLength, restoreMilliseconds: milliseconds.withLock { $0 })
    }
}

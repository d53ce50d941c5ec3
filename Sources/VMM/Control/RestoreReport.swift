import ControlAPI
import LinuxSystem

/// What GET /vm/memory/stats says about a restore: its source, mode, and how long it took.
package final class RestoreReport: Sendable {
    package let snapshot: String
    package let mode: String
    package let chainLength: Int
    private let milliseconds = Locked<Double>(0)

    init(snapshot: String, mode: String, chainLength: Int) {
        self.snapshot = snapshot
        self.mode = mode
        self.chainLength = chainLength
    }

    /// Records the time from the start of the command until the vCPUs start.
    package func finished(after duration: Duration) {
        milliseconds.withLock { $0 = duration.inMilliseconds }
    }

    package var millisecondsText: String {
        let value = milliseconds.withLock { $0 }
        return "\(Double(Int(value * 100)) / 100) ms"
    }

    package var info: RestoreInfo {
        RestoreInfo(snapshot: snapshot, mode: mode, chainLength: chainLength, restoreMilliseconds: milliseconds.withLock { $0 })
    }
}

import Devices
import LinuxSystem

/// An interrupt line that keeps every level it was driven to, in order.
final class RecordingInterruptLine: InterruptLine {
    private let recorded = Locked<[Bool]>([])

    func set(level: Bool) { recorded.withLock { $0.append(level) } }

    /// Every level set so far, oldest first.
    var levels: [Bool] { recorded.withLock { $0 } }

    /// The line's current level (low before anything drove it).
    var isRaised: Bool { levels.last ?? false }

    /// How many low→high transitions the line made: what an edge-triggered PIC would latch.
    var risingEdges: Int {
        var previous = false
        var edges = 0
        for level in levels {
            if level && !previous { edges += 1 }
            previous = level
        }
        return edges
    }
}

/// Collects bytes a device sends out (the UART's output sink).
final class ByteRecorder: Sendable {
    private let recorded = Locked<[UInt8]>([])

    func append(_ byte: UInt8) { recorded.withLock { $0.append(byte) } }

    var bytes: [UInt8] { recorded.withLock { $0 } }
}

/// Counts calls of a callback (reset, power-off).
final class CallCounter: Sendable {
    private let count = Locked(0)

    func record() { count.withLock { $0 += 1 } }

    var calls: Int { count.withLock { $0 } }
}

/// Holds a device created after the callback that needs it, so a callback can call back into
/// its own device: the test that callbacks run outside the device's lock.
final class DeviceSlot<Device: AnyObject & Sendable>: Sendable {
    /// Weak: the device's own callback holds the slot, so a strong reference would be a cycle.
    private struct Reference { weak var device: Device? }
    private let stored = Locked(Reference())

    var device: Device? {
        get { stored.withLock { $0.device } }
        set { stored.withLock { $0.device = newValue } }
    }
}

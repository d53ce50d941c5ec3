import Synchronization

/// What a vsock device has done, for tests and GET /vm: read by other threads while the I/O
/// thread counts.
package final class VsockCounters: Sendable {
    /// Connections set up (either side), and those open now.
    package let connectionsOpened = Atomic<Int>(0)
    package let connectionsOpen = Atomic<Int>(0)
    /// Packets and payload bytes to the guest (rx) and from it (tx).
    package let rxPackets = Atomic<Int>(0)
    package let rxBytes = Atomic<Int>(0)
    package let txPackets = Atomic<Int>(0)
    package let txBytes = Atomic<Int>(0)
    /// RSTs sent to the guest.
    package let resetsSent = Atomic<Int>(0)
    /// Guest packets refused: a bad header, CID, type, length or operation.
    package let refused = Atomic<Int>(0)
    /// Connections reset because the guest sent past the credit Engram gave.
    package let creditViolations = Atomic<Int>(0)
    /// Control packets dropped because the guest left too many unread.
    package let controlDropped = Atomic<Int>(0)
    /// Host clients closed because the guest did not accept their connection in time.
    package let requestTimeouts = Atomic<Int>(0)

    package init() {}
}

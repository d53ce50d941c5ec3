import Synchronization

/// What a network device has moved, for GET /vm and /metrics: read by the control thread while
/// the I/O thread counts.
package final class NetworkCounters: Sendable {
    /// Frames and bytes (without the virtio-net header) handed to the guest.
    package let rxPackets = Atomic<Int>(0)
    package let rxBytes = Atomic<Int>(0)
    /// Frames the guest sent that reached the tap.
    package let txPackets = Atomic<Int>(0)
    package let txBytes = Atomic<Int>(0)
    /// Frames from the tap that no guest buffer could hold.
    package let rxDropped = Atomic<Int>(0)
    /// Frames from the guest that were malformed (shorter than the header, longer than the
    /// largest frame) or that the tap refused (a header it does not accept).
    package let txDropped = Atomic<Int>(0)
    /// Host-side failures reading or writing the tap.
    package let errors = Atomic<Int>(0)

    package init() {}
}

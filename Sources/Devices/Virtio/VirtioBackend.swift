import GuestMemory
import LinuxSystem

/// What makes a virtio device a block device, an entropy source or a socket: its type, features,
/// configuration space and how it serves its queues. The transport (`VirtioMMIODevice`) does the
/// rest, and calls every method with its lock held, from a vCPU thread (configuration, reset) or
/// the device I/O thread (`serve`). Back-ends are `@unchecked Sendable` for that reason: their
/// mutable state is only ever touched under that one lock.
package protocol VirtioBackend: AnyObject, Sendable {
    var deviceType: VirtioDeviceType { get }
    /// Device-specific feature bits offered (the transport adds its own).
    var deviceFeatures: UInt64 { get }
    /// The largest size of each queue; the count is the number of queues.
    var queueMaximumSizes: [UInt16] { get }
    /// The configuration space's byte at `offset`, nil past its end.
    func configurationByte(at offset: Int) -> UInt8?
    /// A driver write to the configuration space (most devices ignore them).
    func writeConfiguration(_ byte: UInt8, at offset: Int)
    /// The driver accepted `features` and set DRIVER_OK.
    func activate(features: UInt64)
    /// Serves what the driver made available on queue `index`; true if anything was put in the
    /// used ring. Throws when the driver broke the queue.
    func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool
    /// The driver reset the device: drop everything negotiated.
    func reset()
    /// When a rate limit stopped `serve` with work left: the monotonic time (ns) to serve again.
    var throttledUntil: UInt64? { get }
    /// A timer of the back-end's own (the balloon's statistics polling): the monotonic time (ns)
    /// at which the I/O thread serves every queue again, with or without a notification.
    var timerDeadline: UInt64? { get }
    /// Chains taken from queue `index` and kept unused (a receive buffer waiting for data): a
    /// saved state gives them back to the available ring, so a restored device takes them again.
    func heldChains(queue index: Int) -> UInt16
    /// A saved state was loaded into the running device, in a new VMM. `kept` is what
    /// `handOver` gave in the previous process (a live update): the back-end continues from it.
    /// nil after a restore or a migration: host resources that did not come along (a vsock
    /// device's connections) are let go here.
    /// True when the back-end changed its configuration space on the way (a network device
    /// asking the guest to announce itself): the transport then tells the driver.
    func restored(kept: VirtioHandover?) throws(VirtioHandoverError) -> Bool
    /// Live update, in the old process (the machine paused, the I/O thread stopped): the host
    /// descriptors and state to keep across exec; nil keeps nothing. The back-end still owns
    /// the descriptors, so a failed exec leaves it as it was.
    func handOver() -> VirtioHandover?
    /// The I/O thread's services for host descriptors of the back-end's own; given once, before serving starts.
    func attach(_ context: VirtioIOContext)
    /// A descriptor the back-end watches (through its context) with `token` is ready.
    func serveHostEvent(token: UInt32, _ event: Epoll.Event)
    /// True for a queue whose buffers the back-end takes only when it has something to put in
    /// them (vsock's receive queue): the transport then serves it once per wake-up, and the
    /// back-end arms the queue's notification itself when it runs out of buffers.
    func holdsBuffers(queue index: Int) -> Bool
}

extension VirtioBackend {
    package func writeConfiguration(_ byte: UInt8, at offset: Int) {}
    package func activate(features: UInt64) {}
    package func reset() {}
    package var throttledUntil: UInt64? { nil }
    package var timerDeadline: UInt64? { nil }
    package func heldChains(queue index: Int) -> UInt16 { 0 }
    package func restored(kept: VirtioHandover?) throws(VirtioHandoverError) -> Bool { false }
    package func handOver() -> VirtioHandover? { nil }
    package func attach(_ context: VirtioIOContext) {}
    package func serveHostEvent(token: UInt32, _ event: Epoll.Event) {}
    package func holdsBuffers(queue index: Int) -> Bool { false }
}

/// How a device interrupts the guest: an irqfd in the machine, a recorder in tests.
package protocol InterruptSignal: Sendable {
    /// Raises the device's interrupt (edge: one pulse per call).
    func signal()
}

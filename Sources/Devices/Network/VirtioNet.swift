import GuestMemory
import LinuxSystem

/// A virtio-net device (type 1) over a tap: frames the guest sends are written to the tap, frames
/// the tap has are put in the guest's receive buffers, each with the 12-byte virtio-net header
/// the tap reads and writes itself, so checksum and segmentation offloads pass straight through.
///
/// Everything runs on the device I/O thread. Transmitted frames go from guest buffers to the tap
/// in one writev; received frames come in one readv straight into a guest buffer that can hold
/// any frame, or through a scratch buffer when the guest's buffers are small (mergeable receive
/// buffers). While the guest has no buffer posted, the tap is not read: its own queue holds (and
/// past its length drops) what arrives, as for a real NIC with a full ring.
package final class VirtioNet: VirtioBackend, @unchecked Sendable {
    static let queueSize: UInt16 = 256
    static let controlQueueSize: UInt16 = 64
    package static let receiveQueue = 0, transmitQueue = 1, controlQueue = 2
    /// The largest frame a tap hands over or takes: a 64 KiB segmentation-offloaded frame and
    /// its Ethernet header, after the virtio-net header.
    package static let frameLimit = Int(TapDevice.headerSize) + 65_550
    /// The largest frame without segmentation offloads: a 1500-byte MTU, Ethernet and VLAN headers.
    static let plainFrameLimit = Int(TapDevice.headerSize) + 1518
    /// Frames taken from the tap per wake-up before other queues get a turn.
    static let receiveBudget = 64
    static let tapToken: UInt32 = 0

    package let tap: TapDevice
    /// "tap NAME", made once: errors on the data path name the tap without allocating.
    let tapSubject: String
    package private(set) var mac: MACAddress
    package let counters: NetworkCounters
    var context: VirtioIOContext?
    var features: UInt64 = 0
    var running = false
    /// The tap is registered in the I/O thread's epoll (only while frames can be taken).
    var tapWatched = false
    var receiveWakePending = false
    /// The configuration's status: link up, and ANNOUNCE until the driver acknowledges it.
    var status: UInt16 = NetworkStatus.linkUp

    /// Receive buffers taken from the ring and not yet used (a frame waiting for more of them).
    var receiveChains: [DescriptorChain]
    var heldReceiveChains = 0
    /// A frame read from the tap that waits for receive buffers: its length in `frame`.
    var pendingFrameLength = 0
    var frame = [UInt8](repeating: 0, count: VirtioNet.frameLimit)
    var transmitChain: DescriptorChain
    var controlChain: DescriptorChain
    let vectors: GuestIOVectors
    var scratch = [UInt8](repeating: 0, count: 16)

    package init(tap: TapDevice, mac: MACAddress, counters: NetworkCounters = NetworkCounters()) {
        self.tap = tap
        tapSubject = "tap \(tap.name)"
        self.mac = mac
        self.counters = counters
        receiveChains = (0..<Int(Self.queueSize)).map { _ in DescriptorChain(capacity: Int(Self.queueSize)) }
        transmitChain = DescriptorChain(capacity: Int(Self.queueSize))
        controlChain = DescriptorChain(capacity: Int(Self.controlQueueSize))
        vectors = GuestIOVectors(capacity: Int(Self.queueSize))
    }

    package var deviceType: VirtioDeviceType { .network }
    package var deviceFeatures: UInt64 { NetworkFeature.offered }
    package var queueMaximumSizes: [UInt16] { [Self.queueSize, Self.queueSize, Self.controlQueueSize] }

    /// struct virtio_net_config: mac, status, max_virtqueue_pairs (1).
    package func configurationByte(at offset: Int) -> UInt8? {
        switch offset {
        case 0..<6: mac.bytes[offset]
        case 6: UInt8(truncatingIfNeeded: status)
        case 7: UInt8(truncatingIfNeeded: status >> 8)
        case 8: 1
        case 9: 0
        default: nil
        }
    }

    package func attach(_ context: VirtioIOContext) { self.context = context }

    /// The tap may now hand over what the driver accepted: partial checksums, and segmented
    /// frames only if the driver takes them (QEMU sets the tap the same way).
    package func activate(features: UInt64) {
        self.features = features
        var offloads: TapDevice.Offloads = []
        if features & NetworkFeature.guestChecksum != 0 {
            offloads.insert(.checksum)
            if features & NetworkFeature.guestTSO4 != 0 { offloads.insert(.tcp4Segmentation) }
            if features & NetworkFeature.guestTSO6 != 0 { offloads.insert(.tcp6Segmentation) }
            if features & NetworkFeature.guestECN != 0 { offloads.insert(.tcpECN) }
        }
        if (try? tap.setOffloads(offloads)) == nil { counters.errors.add(1, ordering: .relaxed) }
        running = true
        watchTap(true)
    }

    package func reset() {
        watchTap(false)
        running = false
        // A wake-up the I/O thread took while the device was reset never reached the receive
        // queue; left set, it would swallow every later one and the tap would never be read again.
        receiveWakePending = false
        features = 0
        heldReceiveChains = 0
        pendingFrameLength = 0
        status = NetworkStatus.linkUp
        try? tap.setOffloads([])
    }

    /// A restored or migrated guest announces itself at once (a gratuitous ARP from the driver,
    /// as after QEMU's migration), so switches learn where it now is; for a driver without
    /// GUEST_ANNOUNCE the device sends QEMU's self-announce frame (a RARP from the guest's MAC)
    /// itself. After a live update it is on the same tap (`kept`): a frame that was waiting for
    /// receive buffers is taken back.
    package func restored(kept: VirtioHandover?) throws(VirtioHandoverError) -> Bool {
        if let kept {
            guard kept.state.count <= frame.count else {
                throw .malformed(what: "net pending frame", reason: "\(kept.state.count) bytes; at most \(frame.count)")
            }
            frame.replaceSubrange(0..<kept.state.count, with: kept.state)
            pendingFrameLength = kept.state.count
            if pendingFrameLength > 0 { wakeReceive() }
            return false
        }
        guard features & NetworkFeature.guestAnnounce != 0 else {
            if (try? tap.send(Self.selfAnnouncement(mac))) != true { counters.errors.add(1, ordering: .relaxed) }
            return false
        }
        status |= NetworkStatus.announce
        return true
    }

    /// QEMU's self-announce frame for `mac`, after a zero virtio-net header: a broadcast RARP
    /// request (ethertype 0x8035, opcode 3) whose sender and target hardware addresses are the
    /// guest's, padded to 60 bytes.
    static func selfAnnouncement(_ mac: MACAddress) -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: Int(TapDevice.headerSize))
        frame += [UInt8](repeating: 0xff, count: 6) + mac.bytes + [0x80, 0x35]
        frame += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x03]  // Ethernet, IPv4, address sizes, reverse request
        frame += mac.bytes + [0, 0, 0, 0] + mac.bytes + [0, 0, 0, 0]
        return frame + [UInt8](repeating: 0, count: Int(TapDevice.headerSize) + 60 - frame.count)
    }

    /// Live update: the tap queue itself (frames keep queueing in the kernel meanwhile), and a
    /// frame read from it that was waiting for receive buffers.
    package func handOver() -> VirtioHandover? {
        VirtioHandover(descriptors: [.init(name: Self.tapDescriptorName, descriptor: tap.descriptor.rawValue)],
                       state: Array(frame[0..<pendingFrameLength]))
    }

    /// The name the tap's descriptor is kept under.
    package static let tapDescriptorName = "tap"

    package func heldChains(queue index: Int) -> UInt16 { index == Self.receiveQueue ? UInt16(heldReceiveChains) : 0 }

    /// The receive queue takes buffers only when the tap has a frame for them.
    package func holdsBuffers(queue index: Int) -> Bool { index == Self.receiveQueue }

    /// The interface as a configuration (what a snapshot saves): the tap by name, and the address.
    package var configuration: NetworkConfiguration { NetworkConfiguration(backend: .tap(tap.name), mac: mac) }

    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        switch index {
        case Self.receiveQueue: return try serveReceive(&queue, memory: memory)
        case Self.transmitQueue: return try serveTransmit(&queue, memory: memory)
        default: return try serveControl(&queue, memory: memory)
        }
    }

    package func serveHostEvent(token: UInt32, _ event: Epoll.Event) {
        guard running, token == Self.tapToken else { return }
        // Level-triggered: the tap stays out of epoll until the receive queue has read it dry.
        watchTap(false)
        wakeReceive()
    }

    func wakeReceive() {
        guard !receiveWakePending else { return }
        receiveWakePending = true
        context?.wake(queue: Self.receiveQueue)
    }

    func watchTap(_ on: Bool) {
        guard on != tapWatched, let context else { return }
        if on {
            guard (try? context.watch(tap.descriptor.rawValue, interest: .readable, token: Self.tapToken)) != nil else {
                counters.errors.add(1, ordering: .relaxed)
                return
            }
        } else {
            context.unwatch(tap.descriptor.rawValue)
        }
        tapWatched = on
    }
}

@testable import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Testing

/// A virtio-net driver written from the spec over 4 MiB of guest RAM, driving the receive,
/// transmit and control queues of a `VirtioNet` over a real tap, served by a real I/O thread.
/// Receive buffer `slot` is descriptor `slot`, one device-writable buffer at `receiveBuffer(slot)`.
final class NetTestGuest: SpecTestGuest {
    static let mac = MACAddress("52:54:00:ab:cd:ef")!
    /// VERSION_1, MAC and STATUS: what every test's driver takes; tests add the rest.
    static let baseFeatures = VirtioFeature.version1 | NetworkFeature.mac | NetworkFeature.status
    static let headerSize = Int(TapDevice.headerSize)
    static let transmitArea: UInt64 = 0x200000
    static let controlCommand: UInt64 = 0x3e0000
    static let controlAnswer: UInt64 = 0x3e1000

    let memory: GuestMemoryMap
    let device: VirtioMMIODevice
    let thread: VirtioIOThread
    let counters: NetworkCounters
    let interrupts: InterruptCounter
    var rx: TestQueue
    var tx = TestQueue(index: 1, size: 64)
    var control = TestQueue(index: 2, size: 16)

    init(tap: TapDevice, features: UInt64, receiveQueueSize: UInt16 = 64) throws {
        memory = try makeTestGuestMemory()
        rx = TestQueue(index: 0, size: receiveQueueSize)
        let counters = NetworkCounters(), interrupts = InterruptCounter()
        self.counters = counters
        self.interrupts = interrupts
        device = try VirtioMMIODevice(name: "net0", backend: VirtioNet(tap: tap, mac: Self.mac, counters: counters), memory: memory, interrupt: interrupts)
        thread = try VirtioIOThread(devices: [device])
        try thread.start()
        negotiate(features: features, queues: [rx, tx, control])
    }

    /// The device a new VMM builds over the same guest memory and tap queue: its transport from
    /// `transport`, restored (`kept` nil: over a duplicate of the old tap descriptor) or
    /// continued from a live update's handover; the driver's cursors as they were.
    init(continuing old: NetTestGuest, transport: VirtioTransportState, kept: VirtioHandover?) throws {
        memory = old.memory
        let descriptor = try kept.map { try #require($0.descriptor(named: VirtioNet.tapDescriptorName)) } ?? dup(old.tapDescriptor)
        let tap = try TapDevice(adopting: OwnedFileDescriptor(taking: descriptor))
        let counters = NetworkCounters(), interrupts = InterruptCounter()
        self.counters = counters
        self.interrupts = interrupts
        device = try VirtioMMIODevice(name: "net0", backend: VirtioNet(tap: tap, mac: Self.mac, counters: counters), memory: memory, interrupt: interrupts)
        thread = try VirtioIOThread(devices: [device])
        rx = old.rx
        tx = old.tx
        control = old.control
        try device.restoreState(transport, kept: kept)
        try thread.start()
    }

    deinit { thread.stop() }

    var tapDescriptor: CInt { device.withBackend { ($0 as! VirtioNet).tap.descriptor.rawValue } }
    /// Receive buffers the device took and holds for a frame.
    var heldReceiveBuffers: UInt16 { device.withBackend { $0.heldChains(queue: VirtioNet.receiveQueue) } }
    /// The device watches the tap for frames (false: it found no buffer and waits for the driver).
    var watchesTap: Bool { device.withBackend { ($0 as! VirtioNet).tapWatched } }

    /// `size` bytes of the configuration space at `offset`.
    func configuration(_ offset: UInt64, size: Int) -> UInt64 { device.read(offset: 0x100 + offset, size: size) }

    // MARK: Frames

    /// An Ethernet frame of `length` bytes to the guest's address, with the local experimental
    /// EtherType 0x88b5 and a payload that differs with `seed`.
    static func frame(length: Int, seed: Int = 0) -> [UInt8] {
        mac.bytes + [0x02, 0, 0, 0, 0, 1, 0x88, 0xb5] + (0..<length - 14).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed &* 13 &+ $0 >> 8) }
    }

    /// A virtio-net header asking nothing of the device (num_buffers 0, as a driver sends it).
    static let plainHeader = [UInt8](repeating: 0, count: headerSize)

    // MARK: Receive

    static func receiveBuffer(_ slot: Int) -> UInt64 { 0x100000 + UInt64(slot) * 0x1000 }

    /// Posts receive buffer `slot` of `size` bytes (at most 4 KiB), filled with 0xaa so that
    /// whatever the device leaves unwritten shows.
    func postReceiveBuffer(_ slot: Int, size: UInt32) throws {
        try memory.write([UInt8](repeating: 0xaa, count: Int(size)), at: GuestAddress(Self.receiveBuffer(slot)))
        try writeDescriptor(rx, UInt16(slot), address: Self.receiveBuffer(slot), length: size, flags: 2, next: 0)
        try publish(&rx, head: UInt16(slot))
    }

    /// A frame as the driver received it.
    struct Received {
        /// The used entries it took: the buffers' heads and the bytes written into each.
        var heads: [UInt16] = []
        var lengths: [UInt32] = []
        var header: [UInt8] = []
        var frame: [UInt8] = []
        /// The used index covered every buffer num_buffers named when the driver first saw it.
        var publishedTogether = false
        var numberOfBuffers: UInt16 { u16(header, 10) }
    }

    /// The next frame in the receive queue, over as many used entries as its header's
    /// num_buffers says (at least one), or nil after `seconds`.
    func receive(within seconds: Double = 5) throws -> Received? {
        guard wait(seconds, until: { self.usedIndex(self.rx) != self.rx.usedSeen }) else { return nil }
        let published = Int(usedIndex(rx) &- rx.usedSeen)
        let first = try usedEntry(rx, rx.usedSeen)
        let header = try memory.read(count: Self.headerSize, at: GuestAddress(Self.receiveBuffer(Int(first.head))))
        let named = max(1, Int(u16(header, 10)))
        var received = Received(publishedTogether: named <= published)
        var bytes: [UInt8] = []
        for _ in 0..<min(named, published) {
            let entry = try usedEntry(rx, rx.usedSeen)
            rx.usedSeen &+= 1
            received.heads.append(entry.head)
            received.lengths.append(entry.length)
            if entry.length > 0 { bytes += try memory.read(count: Int(entry.length), at: GuestAddress(Self.receiveBuffer(Int(entry.head)))) }
        }
        received.header = Array(bytes.prefix(Self.headerSize))
        received.frame = Array(bytes.dropFirst(Self.headerSize))
        return received
    }

    // MARK: Transmit and control

    /// Sends one chain of `segments` (each its own device-readable descriptor) and waits for the
    /// device to use it: the used entry, nil after 5 s.
    func transmit(_ segments: [[UInt8]]) throws -> (head: UInt16, length: UInt32)? {
        var address = Self.transmitArea
        for (index, segment) in segments.enumerated() {
            if !segment.isEmpty { try memory.write(segment, at: GuestAddress(address)) }
            let last = index == segments.count - 1
            try writeDescriptor(tx, UInt16(index), address: address, length: UInt32(segment.count), flags: last ? 0 : 1, next: UInt16(index + 1))
            address += (UInt64(segment.count) + 63) & ~63
        }
        try publish(&tx, head: 0)
        guard wait(5, until: { self.usedIndex(self.tx) != self.tx.usedSeen }) else { return nil }
        defer { tx.usedSeen &+= 1 }
        return try usedEntry(tx, tx.usedSeen)
    }

    /// Sends a control command (class, command, data; then a one-byte answer buffer) and waits
    /// for the answer: the ack byte and the length the device said it wrote, nil after 5 s.
    func command(class commandClass: UInt8, _ command: UInt8, data: [UInt8] = []) throws -> (ack: UInt8, written: UInt32)? {
        try memory.write([commandClass, command] + data, at: GuestAddress(Self.controlCommand))
        try memory.write([0xff], at: GuestAddress(Self.controlAnswer))
        try writeDescriptor(control, 0, address: Self.controlCommand, length: UInt32(2 + data.count), flags: 1, next: 1)
        try writeDescriptor(control, 1, address: Self.controlAnswer, length: 1, flags: 2, next: 0)
        try publish(&control, head: 0)
        guard wait(5, until: { self.usedIndex(self.control) != self.control.usedSeen }) else { return nil }
        let entry = try usedEntry(control, control.usedSeen)
        control.usedSeen &+= 1
        return (try memory.read(count: 1, at: GuestAddress(Self.controlAnswer))[0], entry.length)
    }

    // MARK: Counters

    /// The device's counters at one moment.
    struct Counts: Equatable, CustomStringConvertible {
        var rxPackets = 0, rxBytes = 0, txPackets = 0, txBytes = 0, rxDropped = 0, txDropped = 0, errors = 0
        var description: String {
            "rx \(rxPackets)/\(rxBytes) B, tx \(txPackets)/\(txBytes) B, dropped rx \(rxDropped) tx \(txDropped), errors \(errors)"
        }
    }

    var counts: Counts {
        Counts(rxPackets: counters.rxPackets.load(ordering: .relaxed), rxBytes: counters.rxBytes.load(ordering: .relaxed),
               txPackets: counters.txPackets.load(ordering: .relaxed), txBytes: counters.txBytes.load(ordering: .relaxed),
               rxDropped: counters.rxDropped.load(ordering: .relaxed), txDropped: counters.txDropped.load(ordering: .relaxed),
               errors: counters.errors.load(ordering: .relaxed))
    }

    /// The counters once they read `expected` (the device counts a frame just after publishing
    /// it), or as they are after 5 s.
    func counts(reaching expected: Counts) -> Counts {
        _ = wait(5) { self.counts == expected }
        return counts
    }
}

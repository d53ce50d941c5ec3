import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Testing

/// A vsock driver written from the spec over 4 MiB of guest RAM, driving all three queues of a
/// virtio-vsock device served by a real I/O thread (as in a VM), with host-side helpers.
final class VsockTestGuest: SpecTestGuest {
    static let cid: UInt64 = 3
    static let receiveBuffers = 32
    static let payloadSize: UInt32 = 4096

    typealias Queue = TestQueue

    /// A packet as the guest received it.
    struct Packet {
        var header: [UInt8]
        var payload: [UInt8]
        var sourceCID: UInt64 { u64(header, 0) }
        var destinationCID: UInt64 { u64(header, 8) }
        var sourcePort: UInt32 { u32(header, 16) }
        var destinationPort: UInt32 { u32(header, 20) }
        var length: UInt32 { u32(header, 24) }
        var operation: UInt16 { UInt16(header[30]) | UInt16(header[31]) << 8 }
        var flags: UInt32 { u32(header, 32) }
        var bufferAllocation: UInt32 { u32(header, 36) }
        var forwardCount: UInt32 { u32(header, 40) }
    }

    let memory: GuestMemoryMap
    let device: VirtioMMIODevice
    let thread: VirtioIOThread
    let counters: VsockCounters
    let path: String
    var rx = Queue(index: 0, size: 64)
    var tx = Queue(index: 1, size: 64)
    var events = Queue(index: 2, size: 8)

    init(path: String, clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }) throws {
        self.path = path
        memory = try makeTestGuestMemory()
        let counters = VsockCounters()
        self.counters = counters
        device = try VirtioMMIODevice(name: "vsock0", backend: try VirtioVsock(guestCID: Self.cid, path: path, counters: counters, clock: clock),
                                      memory: memory, interrupt: InterruptCounter())
        thread = try VirtioIOThread(devices: [device])
        try thread.start()
        negotiate(features: 1 << 32, queues: [rx, tx, events])  // VERSION_1 only
        for index in 0..<Self.receiveBuffers { try postReceiveBuffer(index, first: true) }
        for index in 0..<4 { try postEventBuffer(index) }
    }

    /// The device a live update's new process builds over the same guest memory: its transport
    /// from `transport`, its host side continued from `kept`, the driver's cursors as they were.
    init(continuing old: VsockTestGuest, transport: VirtioTransportState, kept: VirtioHandover) throws {
        path = old.path
        memory = old.memory
        counters = VsockCounters()
        let listener = try #require(kept.descriptor(named: "listener"))
        device = try VirtioMMIODevice(
            name: "vsock0", backend: try VirtioVsock(guestCID: Self.cid, path: path, adoptingListener: OwnedFileDescriptor(taking: listener), counters: counters),
            memory: memory, interrupt: InterruptCounter())
        thread = try VirtioIOThread(devices: [device])
        try device.restoreState(transport, kept: kept)
        try thread.start()
        rx = old.rx
        tx = old.tx
        events = old.events
    }

    deinit { thread.stop() }

    static func receiveHeader(_ index: Int) -> UInt64 { 0x100000 + UInt64(index) * 64 }
    static func receivePayload(_ index: Int) -> UInt64 { 0x110000 + UInt64(index) * 0x1000 }

    /// Receive buffer `index`: a 44-byte header descriptor and a payload descriptor, both device-writable.
    func postReceiveBuffer(_ index: Int, first: Bool = false) throws {
        let head = UInt16(2 * index)
        if first {
            try writeDescriptor(rx, head, address: Self.receiveHeader(index), length: 44, flags: 3, next: head + 1)
            try writeDescriptor(rx, head + 1, address: Self.receivePayload(index), length: Self.payloadSize, flags: 2, next: 0)
        }
        try publish(&rx, head: head)
    }

    func postEventBuffer(_ index: Int) throws {
        try writeDescriptor(events, UInt16(index), address: 0x3f0000 + 16 * UInt64(index), length: 8, flags: 2, next: 0)
        try memory.write([UInt8](repeating: 0xff, count: 8), at: GuestAddress(0x3f0000 + 16 * UInt64(index)))
        try publish(&events, head: UInt16(index))
    }

    /// The next packet the device put in a receive buffer (the buffer goes back at once), or nil after `seconds`.
    func receive(within seconds: Double = 5) throws -> Packet? {
        guard wait(seconds, until: { self.usedIndex(self.rx) != self.rx.usedSeen }) else { return nil }
        let (head, length) = try usedEntry(rx, rx.usedSeen)
        rx.usedSeen &+= 1
        let index = Int(head / 2)
        let header = try memory.read(count: 44, at: GuestAddress(Self.receiveHeader(index)))
        let payloadLength = max(0, Int(length) - 44)
        let payload = payloadLength > 0 ? try memory.read(count: payloadLength, at: GuestAddress(Self.receivePayload(index))) : []
        try postReceiveBuffer(index)
        return Packet(header: header, payload: payload)
    }

    /// Sends a packet (header and payload in two descriptors) and waits until the device used it.
    func send(source: UInt64 = cid, destination: UInt64 = 2, sourcePort: UInt32, destinationPort: UInt32, operation: UInt16,
              type: UInt16 = 1, flags: UInt32 = 0, bufferAllocation: UInt32 = 64 << 10, forwardCount: UInt32 = 0,
              payload: [UInt8] = [], claimedLength: UInt32? = nil) throws {
        var header = withUnsafeBytes(of: source.littleEndian, Array.init) + withUnsafeBytes(of: destination.littleEndian, Array.init)
        header += withUnsafeBytes(of: sourcePort.littleEndian, Array.init) + withUnsafeBytes(of: destinationPort.littleEndian, Array.init)
        header += withUnsafeBytes(of: (claimedLength ?? UInt32(payload.count)).littleEndian, Array.init)
        header += withUnsafeBytes(of: type.littleEndian, Array.init) + withUnsafeBytes(of: operation.littleEndian, Array.init)
        header += withUnsafeBytes(of: flags.littleEndian, Array.init) + withUnsafeBytes(of: bufferAllocation.littleEndian, Array.init)
        header += withUnsafeBytes(of: forwardCount.littleEndian, Array.init)
        try memory.write(header, at: GuestAddress(0x200000))
        if payload.isEmpty {
            try writeDescriptor(tx, 0, address: 0x200000, length: 44, flags: 0, next: 0)
        } else {
            try memory.write(payload, at: GuestAddress(0x200100))
            try writeDescriptor(tx, 0, address: 0x200000, length: 44, flags: 1, next: 1)
            try writeDescriptor(tx, 1, address: 0x200100, length: UInt32(payload.count), flags: 0, next: 0)
        }
        try publish(&tx, head: 0)
        let target = tx.availableIndex
        _ = wait(5) { self.usedIndex(self.tx) == target }
    }
}

/// Blocking-style helpers over a non-blocking host stream, for tests.
extension NonBlockingStream {
    /// Reads until `count` bytes came or `seconds` passed.
    func read(count: Int, within seconds: Double = 5) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(seconds)
        while result.count < count, Date() < deadline {
            switch receive(into: &buffer, at: 0, count: min(buffer.count, count - result.count)) {
            case .moved(let moved): result += buffer[0..<moved]
            case .wouldBlock: _ = Poll.isReadable(rawValue, milliseconds: 10)
            case .closed, .failed: return result
            }
        }
        return result
    }

    /// Reads one line (without its newline).
    func readLine(within seconds: Double = 5) -> String? {
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let byte = read(count: 1, within: max(0, deadline.timeIntervalSinceNow))
            guard let first = byte.first else { return nil }
            if first == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(first)
        }
        return nil
    }

    /// True once the peer closed (end of input) within `seconds`; input before it is discarded.
    func closes(within seconds: Double = 5) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            switch receive(into: &buffer, at: 0, count: buffer.count) {
            case .closed, .failed: return true
            case .moved: continue
            case .wouldBlock: _ = Poll.isReadable(rawValue, milliseconds: 10)
            }
        }
        return false
    }

    /// Sends all of `bytes` (waiting while the socket is full).
    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            switch send(bytes, from: offset, count: bytes.count - offset) {
            case .moved(let moved): offset += moved
            case .wouldBlock: usleep(200)
            case .closed, .failed: return
            }
        }
    }
}

import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Testing

/// A vsock driver written from the spec over 4 MiB of guest RAM, driving all three queues of a
/// virtio-vsock device served by a real I/O thread (as in a VM), with host-side helpers.
final class VsockTestGuest {
    static let cid: UInt64 = 3
    static let receiveBuffers = 32
    static let payloadSize: UInt32 = 4096

    /// One queue's rings and the driver's cursors.
    struct Queue {
        let index: Int
        let size: UInt16
        var descriptors: UInt64 { 0x10000 + UInt64(index) * 0x4000 }
        var available: UInt64 { descriptors + 0x1000 }
        var used: UInt64 { descriptors + 0x2000 }
        var availableIndex: UInt16 = 0
        var usedSeen: UInt16 = 0
    }

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

    init(path: String) throws {
        self.path = path
        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
        memory = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 4 << 20, region: region, regionOffset: RegionOffset(0)),
        ])
        let counters = VsockCounters()
        self.counters = counters
        device = try VirtioMMIODevice(name: "vsock0", backend: try VirtioVsock(guestCID: Self.cid, path: path, counters: counters),
                                      memory: memory, interrupt: InterruptCounter())
        thread = try VirtioIOThread(devices: [device])
        try thread.start()
        negotiate()
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

    func setRegister(_ offset: UInt64, _ value: UInt32) { device.write(offset: offset, size: 4, value: UInt64(value)) }
    func register(_ offset: UInt64) -> UInt32 { UInt32(device.read(offset: offset, size: 4)) }

    /// virtio 1.x, 3.1.1, with VERSION_1 only: the driver notifies every buffer, the device interrupts every use.
    private func negotiate() {
        setRegister(0x70, 0)
        setRegister(0x70, 1)
        setRegister(0x70, 3)
        setRegister(0x24, 1); setRegister(0x20, 1)
        setRegister(0x70, 11)
        for queue in [rx, tx, events] {
            setRegister(0x30, UInt32(queue.index))
            setRegister(0x38, UInt32(queue.size))
            setRegister(0x80, UInt32(queue.descriptors)); setRegister(0x84, 0)
            setRegister(0x90, UInt32(queue.available)); setRegister(0x94, 0)
            setRegister(0xa0, UInt32(queue.used)); setRegister(0xa4, 0)
            setRegister(0x44, 1)
        }
        setRegister(0x70, 15)
    }

    var needsReset: Bool { register(0x70) & VirtioStatus.needsReset != 0 }

    // MARK: Rings

    func writeDescriptor(_ queue: Queue, _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) throws {
        var bytes = withUnsafeBytes(of: address.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: length.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: flags.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: next.littleEndian, Array.init)
        try memory.write(bytes, at: GuestAddress(queue.descriptors + 16 * UInt64(index)))
    }

    func publish(_ queue: inout Queue, head: UInt16) throws {
        try write16(head, at: queue.available + 4 + 2 * UInt64(queue.availableIndex % queue.size))
        queue.availableIndex &+= 1
        try write16(queue.availableIndex, at: queue.available + 2)
        setRegister(0x50, UInt32(queue.index))
    }

    func usedIndex(_ queue: Queue) -> UInt16 { (try? read16(at: queue.used + 2)) ?? 0 }

    func usedEntry(_ queue: Queue, _ index: UInt16) throws -> (head: UInt16, length: UInt32) {
        let bytes = try memory.read(count: 8, at: GuestAddress(queue.used + 4 + 8 * UInt64(index % queue.size)))
        return (UInt16(u32(bytes, 0)), u32(bytes, 4))
    }

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

    func wait(_ seconds: Double, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() > deadline { return false }
            usleep(500)
        }
        return true
    }

    func write16(_ value: UInt16, at address: UInt64) throws { try memory.write([UInt8(value & 0xff), UInt8(value >> 8)], at: GuestAddress(address)) }
    func read16(at address: UInt64) throws -> UInt16 {
        let bytes = try memory.read(count: 2, at: GuestAddress(address))
        return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
    }
}

func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) } }
func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) } }

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

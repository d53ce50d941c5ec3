import Devices
import GuestMemory
import Synchronization

/// Counts interrupts a device raises.
final class InterruptCounter: InterruptSignal {
    let count = Atomic<Int>(0)
    func signal() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// A virtio driver written from the spec, over 4 MiB of guest RAM at address 0, that drives one
/// queue of a device's MMIO transport the way a guest would, including ways a guest must not.
struct VirtioTestDriver {
    static let descriptorTable: UInt64 = 0x10000
    static let availableRing: UInt64 = 0x11000
    static let usedRing: UInt64 = 0x12000
    static let indirectTable: UInt64 = 0x13000
    static let bufferBase: UInt64 = 0x100000

    let memory: GuestMemoryMap
    let device: VirtioMMIODevice
    let interrupts = InterruptCounter()
    let queueSize: UInt16
    /// The queue this driver enables and feeds.
    let queueIndex: Int
    private(set) var availableIndex: UInt16 = 0
    private var nextDescriptor: UInt16 = 0

    /// Builds the device around `backend` and, unless `initialize` is false, negotiates
    /// `features` (nil: all offered) and enables queue `queue`.
    init(backend: sending any VirtioBackend, features: UInt64? = nil, queueSize: UInt16 = 16, queue: Int = 0, initialize: Bool = true) throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
        memory = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 4 << 20, region: region, regionOffset: RegionOffset(0)),
        ])
        self.queueSize = queueSize
        queueIndex = queue
        let counter = interrupts
        device = try VirtioMMIODevice(name: "test0", backend: backend, memory: memory, interrupt: counter)
        if initialize { try negotiate(features: features) }
    }

    func register(_ offset: UInt64) -> UInt32 { UInt32(device.read(offset: offset, size: 4)) }
    func setRegister(_ offset: UInt64, _ value: UInt32) { device.write(offset: offset, size: 4, value: UInt64(value)) }

    var offeredFeatures: UInt64 {
        setRegister(0x14, 0)
        let low = UInt64(register(0x10))
        setRegister(0x14, 1)
        return low | UInt64(register(0x10)) << 32
    }

    var status: UInt32 { register(0x70) }

    /// The initialisation sequence of virtio 1.x, 3.1.1.
    func negotiate(features: UInt64?) throws {
        setRegister(0x70, 0)
        setRegister(0x70, VirtioStatus.acknowledge)
        setRegister(0x70, VirtioStatus.acknowledge | VirtioStatus.driver)
        let chosen = features ?? offeredFeatures
        setRegister(0x24, 0); setRegister(0x20, UInt32(truncatingIfNeeded: chosen))
        setRegister(0x24, 1); setRegister(0x20, UInt32(truncatingIfNeeded: chosen >> 32))
        setRegister(0x70, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
        guard status & VirtioStatus.featuresOK != 0 else { return }
        for offset in stride(from: 0, to: 0x3000, by: 8) { try memory.write([UInt8](repeating: 0, count: 8), at: GuestAddress(Self.descriptorTable + UInt64(offset))) }
        setRegister(0x30, UInt32(queueIndex))
        setRegister(0x38, UInt32(queueSize))
        setRegister(0x80, UInt32(Self.descriptorTable)); setRegister(0x84, 0)
        setRegister(0x90, UInt32(Self.availableRing)); setRegister(0x94, 0)
        setRegister(0xa0, UInt32(Self.usedRing)); setRegister(0xa4, 0)
        setRegister(0x44, 1)
        setRegister(0x70, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK)
    }

    /// Writes descriptor `index` of the table at `table`.
    func writeDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16, table: UInt64 = descriptorTable) throws {
        var bytes: [UInt8] = []
        bytes += withUnsafeBytes(of: address.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: length.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: flags.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: next.littleEndian, Array.init)
        try memory.write(bytes, at: GuestAddress(table + 16 * UInt64(index)))
    }

    /// Chains `segments` (address, length, device-writable) in the descriptor table, or in an
    /// indirect table with `indirect`, and makes the chain available. Returns its head.
    @discardableResult
    mutating func submit(_ segments: [(UInt64, UInt32, Bool)], indirect: Bool = false) throws -> UInt16 {
        let head = nextDescriptor
        if indirect {
            for (index, segment) in segments.enumerated() {
                let last = index == segments.count - 1
                try writeDescriptor(UInt16(index), address: segment.0, length: segment.1, flags: (segment.2 ? 2 : 0) | (last ? 0 : 1),
                                    next: UInt16(index + 1), table: Self.indirectTable)
            }
            try writeDescriptor(head, address: Self.indirectTable, length: UInt32(16 * segments.count), flags: 4, next: 0)
            nextDescriptor = (nextDescriptor + 1) % queueSize
        } else {
            for (index, segment) in segments.enumerated() {
                let slot = (head + UInt16(index)) % queueSize
                let last = index == segments.count - 1
                try writeDescriptor(slot, address: segment.0, length: segment.1, flags: (segment.2 ? 2 : 0) | (last ? 0 : 1),
                                    next: (slot + 1) % queueSize)
            }
            nextDescriptor = (nextDescriptor + UInt16(segments.count)) % queueSize
        }
        try makeAvailable(head)
        return head
    }

    /// Puts `head` in the available ring and publishes it.
    mutating func makeAvailable(_ head: UInt16) throws {
        try write16(head, at: Self.availableRing + 4 + 2 * UInt64(availableIndex % queueSize))
        availableIndex &+= 1
        try write16(availableIndex, at: Self.availableRing + 2)
    }

    /// Sets the available index to anything (a hostile driver).
    mutating func forceAvailableIndex(_ index: UInt16) throws {
        availableIndex = index
        try write16(index, at: Self.availableRing + 2)
    }

    /// Rings the doorbell and lets the device serve the queue (what the I/O thread does).
    func notify() {
        setRegister(0x50, UInt32(queueIndex))
        device.serveQueue(queueIndex)
    }

    var usedIndex: UInt16 { (try? read16(at: Self.usedRing + 2)) ?? 0 }

    /// The used ring's entry `index`: the chain's head and the bytes written.
    func usedEntry(_ index: UInt16) throws -> (head: UInt32, length: UInt32) {
        let bytes = try memory.read(count: 8, at: GuestAddress(Self.usedRing + 4 + 8 * UInt64(index % queueSize)))
        return (Self.u32(bytes, 0), Self.u32(bytes, 4))
    }

    func write16(_ value: UInt16, at address: UInt64) throws { try memory.write([UInt8(value & 0xff), UInt8(value >> 8)], at: GuestAddress(address)) }
    func read16(at address: UInt64) throws -> UInt16 {
        let bytes = try memory.read(count: 2, at: GuestAddress(address))
        return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
    }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
    }
}

import Devices
import Foundation
import GuestMemory
import LinuxSystem

/// One split virtqueue as a spec-written test driver lays it out in guest RAM (queue `index`'s
/// rings from 0x10000 + 16 KiB per index, room for 256 entries) and the driver's cursors.
struct TestQueue {
    let index: Int
    let size: UInt16
    var descriptors: UInt64 { 0x10000 + UInt64(index) * 0x4000 }
    var available: UInt64 { descriptors + 0x1000 }
    var used: UInt64 { descriptors + 0x2000 }
    var availableIndex: UInt16 = 0
    var usedSeen: UInt16 = 0
}

/// A driver written from the spec that drives several queues of one device over 4 MiB of guest
/// RAM, the device served by a real I/O thread as in a VM: the register and ring handling the
/// vsock and network test guests share.
protocol SpecTestGuest: AnyObject {
    var memory: GuestMemoryMap { get }
    var device: VirtioMMIODevice { get }
}

/// 4 MiB of guest RAM at address 0.
func makeTestGuestMemory() throws -> GuestMemoryMap {
    let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd)
    return GuestMemoryMap(regions: [region], mappings: [
        GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 4 << 20, region: region, regionOffset: RegionOffset(0)),
    ])
}

extension SpecTestGuest {
    func setRegister(_ offset: UInt64, _ value: UInt32) { device.write(offset: offset, size: 4, value: UInt64(value)) }
    func register(_ offset: UInt64) -> UInt32 { UInt32(device.read(offset: offset, size: 4)) }

    /// virtio 1.x, 3.1.1: accepts `features`, enables `queues`, sets DRIVER_OK. Without
    /// EVENT_IDX the driver notifies every buffer and the device interrupts every use.
    func negotiate(features: UInt64, queues: [TestQueue]) {
        setRegister(0x70, 0)
        setRegister(0x70, 1)
        setRegister(0x70, 3)
        setRegister(0x24, 0); setRegister(0x20, UInt32(truncatingIfNeeded: features))
        setRegister(0x24, 1); setRegister(0x20, UInt32(truncatingIfNeeded: features >> 32))
        setRegister(0x70, 11)
        for queue in queues {
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

    func writeDescriptor(_ queue: TestQueue, _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) throws {
        var bytes = withUnsafeBytes(of: address.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: length.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: flags.littleEndian, Array.init)
        bytes += withUnsafeBytes(of: next.littleEndian, Array.init)
        try memory.write(bytes, at: GuestAddress(queue.descriptors + 16 * UInt64(index)))
    }

    /// Makes chain `head` available and notifies the queue.
    func publish(_ queue: inout TestQueue, head: UInt16) throws {
        try write16(head, at: queue.available + 4 + 2 * UInt64(queue.availableIndex % queue.size))
        queue.availableIndex &+= 1
        try write16(queue.availableIndex, at: queue.available + 2)
        setRegister(0x50, UInt32(queue.index))
    }

    func usedIndex(_ queue: TestQueue) -> UInt16 { (try? read16(at: queue.used + 2)) ?? 0 }

    /// The used ring's entry `index`: the chain's head and the bytes the device wrote.
    func usedEntry(_ queue: TestQueue, _ index: UInt16) throws -> (head: UInt16, length: UInt32) {
        let bytes = try memory.read(count: 8, at: GuestAddress(queue.used + 4 + 8 * UInt64(index % queue.size)))
        return (UInt16(u32(bytes, 0)), u32(bytes, 4))
    }

    /// Polls `condition` for up to `seconds` (a hang guard, not a timing assertion).
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

func u16(_ bytes: [UInt8], _ offset: Int) -> UInt16 { UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8 }
func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) } }
func u64(_ bytes: [UInt8], _ offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) } }

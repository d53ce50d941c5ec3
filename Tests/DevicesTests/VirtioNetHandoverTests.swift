@testable import Devices
import Glibc
import GuestMemory
import LinuxSystem
import Testing
import TestSupport

/// virtio-net across a live update, in one process: the device hands over its tap queue (and a
/// frame waiting for buffers), and a second device over the same guest memory (as the new VMM
/// builds it) continues on it; frames that arrived meanwhile waited in the tap.
@Suite(.enabled(if: TapWire.available, "needs root and /dev/net/tun"))
struct VirtioNetHandoverTests {
    typealias Guest = NetTestGuest

    /// What the new process finds open: duplicates of the handed-over descriptors.
    private func kept(_ handover: VirtioHandover) -> VirtioHandover {
        VirtioHandover(descriptors: handover.descriptors.map { .init(name: $0.name, descriptor: dup($0.descriptor)) }, state: handover.state)
    }

    @Test func aSecondDeviceContinuesOnTheHandedOverTap() throws {
        let wire = try TapWire()
        let old = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.controlQueue | NetworkFeature.guestAnnounce)
        for slot in 0..<4 { try old.postReceiveBuffer(slot, size: 2048) }
        let before = Guest.frame(length: 120, seed: 1)
        try wire.send(before)
        #expect(try old.receive()?.frame == before)
        old.thread.stop()
        let transport = old.device.saveState()
        let handover = try #require(old.device.handOver())
        #expect(handover.descriptors.map(\.name) == [VirtioNet.tapDescriptorName])
        #expect(handover.descriptors.first?.descriptor == wire.tap.descriptor.rawValue)
        #expect(handover.state.isEmpty, "no frame was waiting")

        let meanwhile = Guest.frame(length: 300, seed: 2), after = Guest.frame(length: 700, seed: 3)
        try wire.send(meanwhile)
        let new = try Guest(continuing: old, transport: transport, kept: kept(handover))
        try wire.send(after)
        let first = try #require(try new.receive())
        #expect(first.frame == meanwhile && first.heads == [1], "the buffer the old device held is taken again")
        let second = try #require(try new.receive())
        #expect(second.frame == after && second.heads == [2])
        #expect(new.configuration(6, size: 2) == UInt64(NetworkStatus.linkUp), "a live update asks for no announcement")
        #expect(new.interrupts.value >= 1 && new.register(0x60) & 2 == 0)
        // And it transmits on the same tap.
        let sent = Guest.frame(length: 90, seed: 4)
        #expect(try new.transmit([Guest.plainHeader + sent]) != nil)
        #expect(wire.receive() == sent)
        withExtendedLifetime(old) {}
    }

    /// A frame read from the tap and waiting for more mergeable buffers goes with the handover,
    /// and the second device delivers it whole once the driver posts enough.
    @Test func aFrameWaitingForBuffersIsCarriedAcrossTheHandover() throws {
        let wire = try TapWire()
        let old = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.mergeableReceiveBuffers)
        for slot in 0..<3 { try old.postReceiveBuffer(slot, size: 256) }
        let frame = Guest.frame(length: 1500, seed: 5)
        try wire.send(frame)
        #expect(old.wait(5) { old.heldReceiveBuffers == 3 })
        old.thread.stop()
        let transport = old.device.saveState()
        let handover = try #require(old.device.handOver())
        #expect(handover.state.count == Guest.headerSize + frame.count, "the frame with its header")
        #expect(handover.state.dropFirst(Guest.headerSize).elementsEqual(frame))
        let new = try Guest(continuing: old, transport: transport, kept: kept(handover))
        for slot in 3..<6 { try new.postReceiveBuffer(slot, size: 256) }
        let received = try #require(try new.receive())
        #expect(received.numberOfBuffers == 6 && received.publishedTogether)
        #expect(received.heads == [0, 1, 2, 3, 4, 5])
        #expect(received.frame == frame)
        withExtendedLifetime(old) {}
    }

    /// A frame carried across the handover comes with no buffer held: the first one the second
    /// device takes must still have room for the header. Here the driver shrank the buffer the
    /// old device held before the new one took it again: the device asks for a reset and writes
    /// nothing. (That chain went unchecked, and num_buffers written into it failed a
    /// precondition, ending the VMM.)
    @Test func aCarriedFramesFirstBufferIsCheckedToo() throws {
        let wire = try TapWire()
        let old = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.mergeableReceiveBuffers)
        for slot in 0..<2 { try old.postReceiveBuffer(slot, size: 256) }
        try wire.send(Guest.frame(length: 1500, seed: 7))
        #expect(old.wait(5) { old.heldReceiveBuffers == 2 }, "the frame took both buffers and waits for more")
        old.thread.stop()
        let transport = old.device.saveState()
        let handover = try #require(old.device.handOver())
        #expect(!handover.state.isEmpty, "the frame waits for buffers")
        try old.writeDescriptor(old.rx, 0, address: Guest.receiveBuffer(0), length: 4, flags: 2, next: 0)
        let before = try old.memory.read(count: 64, at: GuestAddress(Guest.receiveBuffer(0)))
        let new = try Guest(continuing: old, transport: transport, kept: kept(handover))
        try new.postReceiveBuffer(2, size: 2048)
        #expect(new.wait(5) { new.needsReset }, "the device asks for a reset")
        #expect(new.usedIndex(new.rx) == 0)
        #expect(try new.memory.read(count: 64, at: GuestAddress(Guest.receiveBuffer(0))) == before)
        withExtendedLifetime(old) {}
    }
}

import GuestMemory
@testable import Devices
import Testing
import TestSupport

/// virtio-net's receive queue over a real tap: frames sent on the wire land in the buffers the
/// driver posts, one buffer each or (with MRG_RXBUF) spread over several, none lost while the
/// driver has no buffer, and none shown to the driver before all of it is in place.
@Suite(.enabled(if: TapWire.available, "needs root and /dev/net/tun"))
struct VirtioNetReceiveTests {
    typealias Guest = NetTestGuest
    static let oneBuffer: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]

    /// A buffer that holds any frame (1530 bytes) is read into directly; a smaller one through
    /// the device's scratch buffer. Either way: the frame, its length, num_buffers 1.
    @Test func framesLandInPostedBuffersWithOneBufferEach() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        try guest.postReceiveBuffer(0, size: 1530)
        try guest.postReceiveBuffer(1, size: 1529)
        let small = Guest.frame(length: 200, seed: 1), large = Guest.frame(length: 1400, seed: 2)
        try wire.send(small)
        try wire.send(large)
        let first = try #require(try guest.receive())
        #expect(first.heads == [0] && first.lengths == [212])
        #expect(first.header == Self.oneBuffer && first.frame == small)
        let second = try #require(try guest.receive())
        #expect(second.heads == [1] && second.lengths == [1412])
        #expect(second.header == Self.oneBuffer && second.frame == large)
        #expect(guest.counts(reaching: .init(rxPackets: 2, rxBytes: 1600)) == .init(rxPackets: 2, rxBytes: 1600))
    }

    /// A first receive buffer with no room for the virtio-net header breaks the spec: the device
    /// needs a reset, uses no buffer and writes nothing past it, though the next buffer could
    /// hold the rest of the frame. (Found by fuzzing: the device wrote the frame over both, then
    /// num_buffers into the 4-byte one failed a precondition and ended the VMM.)
    @Test func aReceiveBufferTooSmallForTheHeaderNeedsAReset() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.mergeableReceiveBuffers)
        try guest.postReceiveBuffer(0, size: 4)
        try guest.postReceiveBuffer(1, size: 1024)
        let before = try guest.memory.read(count: 64, at: GuestAddress(Guest.receiveBuffer(0)))
        try wire.send(Guest.frame(length: 100, seed: 6))
        #expect(guest.wait(5) { guest.needsReset }, "the device asks for a reset")
        #expect(guest.usedIndex(guest.rx) == 0)
        #expect(try guest.memory.read(count: 64, at: GuestAddress(Guest.receiveBuffer(0))) == before)
    }

    /// Without MRG_RXBUF a frame must fit one buffer: a larger one is dropped, and the buffer
    /// stays posted for the next frame that fits.
    @Test func aFrameLargerThanTheOnlyBufferIsDroppedAndTheBufferKept() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        try guest.postReceiveBuffer(0, size: 512)
        let fits = Guest.frame(length: 100, seed: 3)
        try wire.send(Guest.frame(length: 1400, seed: 4))
        try wire.send(fits)
        let received = try #require(try guest.receive())
        #expect(received.heads == [0] && received.lengths == [112] && received.frame == fits)
        #expect(guest.counts(reaching: .init(rxPackets: 1, rxBytes: 100, rxDropped: 1)) == .init(rxPackets: 1, rxBytes: 100, rxDropped: 1))
    }

    /// With MRG_RXBUF and 256-byte buffers a 1500-byte frame takes six: the device holds the
    /// buffers it has until enough are posted, then shows all six in one used-index update.
    @Test func aFrameSpreadOverMergeableBuffersIsPublishedAtOnce() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.mergeableReceiveBuffers)
        for slot in 0..<3 { try guest.postReceiveBuffer(slot, size: 256) }
        let frame = Guest.frame(length: 1500, seed: 5)
        try wire.send(frame)
        #expect(guest.wait(5) { guest.heldReceiveBuffers == 3 }, "the device took the three buffers and waits for more")
        #expect(guest.usedIndex(guest.rx) == 0, "no part of the frame is shown before all of it is in place")
        for slot in 3..<8 { try guest.postReceiveBuffer(slot, size: 256) }
        let received = try #require(try guest.receive())
        #expect(received.numberOfBuffers == 6)
        #expect(received.publishedTogether)
        #expect(received.heads == [0, 1, 2, 3, 4, 5])
        #expect(received.lengths == [256, 256, 256, 256, 256, 232])
        #expect(received.header == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0])
        #expect(received.frame == frame)
        #expect(guest.counts(reaching: .init(rxPackets: 1, rxBytes: 1500)) == .init(rxPackets: 1, rxBytes: 1500))
    }

    /// A frame that even every buffer of the ring cannot hold is dropped and the buffers given
    /// back (the driver could post no more), so the queue does not stall.
    @Test func aFrameNoFullRingCanHoldIsDroppedAndTheBuffersReturned() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.mergeableReceiveBuffers, receiveQueueSize: 8)
        for slot in 0..<8 { try guest.postReceiveBuffer(slot, size: 128) }
        try wire.send(Guest.frame(length: 1500, seed: 6))
        let small = Guest.frame(length: 80, seed: 7)
        try wire.send(small)
        #expect(guest.wait(5) { guest.usedIndex(guest.rx) == 8 }, "all eight buffers came back")
        for index in 0..<UInt16(8) { #expect(try guest.usedEntry(guest.rx, index).length == 0) }
        guest.rx.usedSeen = 8
        for slot in 0..<8 { try guest.postReceiveBuffer(slot, size: 128) }
        let received = try #require(try guest.receive())
        #expect(received.numberOfBuffers == 1 && received.frame == small)
        #expect(guest.counts(reaching: .init(rxPackets: 1, rxBytes: 80, rxDropped: 1)) == .init(rxPackets: 1, rxBytes: 80, rxDropped: 1))
    }

    /// While no buffer is posted the device leaves frames in the tap's queue: posted later,
    /// the buffers get every frame, in order.
    @Test func framesArrivingWithNoBufferPostedWaitInTheTap() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        let frames = (0..<5).map { Guest.frame(length: 100 + 50 * $0, seed: 10 + $0) }
        for frame in frames { try wire.send(frame) }
        #expect(guest.wait(5) { !guest.watchesTap }, "the device saw the frames and found no buffer")
        for slot in 0..<5 { try guest.postReceiveBuffer(slot, size: 2048) }
        for (index, frame) in frames.enumerated() {
            let received = try #require(try guest.receive(), "frame \(index)")
            #expect(received.heads == [UInt16(index)] && received.frame == frame, "frame \(index)")
        }
        let bytes = frames.map(\.count).reduce(0, +)
        #expect(guest.counts(reaching: .init(rxPackets: 5, rxBytes: bytes)) == .init(rxPackets: 5, rxBytes: bytes))
    }

    /// A wake-up the I/O thread took while the driver was resetting the device never reached the
    /// receive queue; the reset forgets it, or it would swallow every later wake-up and the tap
    /// would never be read again once the driver set the device up anew.
    @Test func aResetForgetsAWakeUpTheQueueNeverTook() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        guest.thread.stop()
        guest.device.withBackend { ($0 as! VirtioNet).wakeReceive() }
        guest.setRegister(0x70, 0)  // Status: reset
        #expect(guest.device.withBackend { ($0 as! VirtioNet).receiveWakePending } == false)
    }
}

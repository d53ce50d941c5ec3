@testable import Devices
import Testing
import TestSupport

/// virtio-net's transmit queue over a real tap: what the driver sends reaches the wire byte for
/// byte, and what it must not send is dropped, counted, and its buffer returned.
@Suite(.enabled(if: TapWire.available, "needs root and /dev/net/tun"))
struct VirtioNetTransmitTests {
    typealias Guest = NetTestGuest

    @Test func aFrameInOneDescriptorReachesTheWireByteForByte() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        let frame = Guest.frame(length: 300, seed: 1)
        let used = try #require(try guest.transmit([Guest.plainHeader + frame]))
        #expect(used.head == 0 && used.length == 0)
        #expect(wire.receive() == frame)
        #expect(guest.counts(reaching: .init(txPackets: 1, txBytes: 300)) == .init(txPackets: 1, txBytes: 300))
    }

    /// The header and the frame may be cut anywhere across descriptors.
    @Test func aFrameSpreadOverSeveralDescriptorsReachesTheWireWhole() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        let frame = Guest.frame(length: 1514, seed: 2)
        let bytes = Guest.plainHeader + frame
        let cuts = [0, 4, 15, 200, 201, 1000, bytes.count]
        let segments = zip(cuts, cuts.dropFirst()).map { Array(bytes[$0..<$1]) }
        #expect(try guest.transmit(segments) != nil)
        #expect(try guest.transmit([Guest.plainHeader, frame]) != nil)
        #expect(wire.receive() == frame)
        #expect(wire.receive() == frame)
        #expect(guest.counts(reaching: .init(txPackets: 2, txBytes: 3028)) == .init(txPackets: 2, txBytes: 3028))
    }

    /// Shorter than the header, a header alone, longer than the largest frame: each is dropped
    /// with its buffer given back, and the next good frame is the first the wire sees.
    @Test func malformedChainsAreDroppedAndTheirBuffersReturned() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        #expect(try guest.transmit([[UInt8](repeating: 0, count: 8)]) != nil, "shorter than the header")
        #expect(try guest.transmit([Guest.plainHeader]) != nil, "no frame after the header")
        let tooLong = Guest.plainHeader + Guest.frame(length: VirtioNet.frameLimit - Guest.headerSize + 1)
        #expect(tooLong.count == 65_563)
        #expect(try guest.transmit([tooLong]) != nil, "longer than 65,562 bytes")
        #expect(guest.counts == .init(txDropped: 3))
        let frame = Guest.frame(length: 60, seed: 3)
        #expect(try guest.transmit([Guest.plainHeader, frame]) != nil)
        #expect(wire.receive() == frame)
        #expect(guest.counts(reaching: .init(txPackets: 1, txBytes: 60, txDropped: 3)) == .init(txPackets: 1, txBytes: 60, txDropped: 3))
    }

    /// NEEDS_CSUM with csum_start/csum_offset past the frame: the tap refuses it (EINVAL); the
    /// device counts a drop, not a host error, and carries on.
    @Test func aChecksumRequestPastTheFrameIsRefusedByTheTap() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.checksum)
        // flags NEEDS_CSUM, gso none, hdr_len 0, csum_start 1000, csum_offset 6, num_buffers 0.
        let header: [UInt8] = [1, 0, 0, 0, 0, 0, 0xe8, 0x03, 6, 0, 0, 0]
        #expect(try guest.transmit([header + Guest.frame(length: 100, seed: 4)]) != nil)
        #expect(guest.counts == .init(txDropped: 1))
        let frame = Guest.frame(length: 100, seed: 5)
        #expect(try guest.transmit([Guest.plainHeader + frame]) != nil)
        #expect(wire.receive() == frame, "the refused frame never reached the wire")
        #expect(guest.counts(reaching: .init(txPackets: 1, txBytes: 100, txDropped: 1)) == .init(txPackets: 1, txBytes: 100, txDropped: 1))
        #expect(!guest.needsReset)
    }
}

@testable import Devices
import Testing
import TestSupport

/// virtio-net's configuration space, control queue, and the announcement a restored guest is
/// asked to make (so switches learn where it now is).
@Suite(.enabled(if: TapWire.available, "needs root and /dev/net/tun"))
struct VirtioNetControlTests {
    typealias Guest = NetTestGuest

    @Test func theConfigurationSpaceGivesTheAddressAndTheLink() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures)
        #expect(guest.register(0x08) == 1, "device type: network")
        #expect((0..<6).map { UInt8(guest.configuration(UInt64($0), size: 1)) } == Guest.mac.bytes)
        #expect(guest.configuration(6, size: 2) == UInt64(NetworkStatus.linkUp))
        #expect(guest.configuration(8, size: 2) == 1, "max_virtqueue_pairs")
        guest.setRegister(0x14, 0)
        let low = UInt64(guest.register(0x10))
        guest.setRegister(0x14, 1)
        let offered = low | UInt64(guest.register(0x10)) << 32
        let bits: [(String, Int)] = [("CSUM", 0), ("GUEST_CSUM", 1), ("MAC", 5), ("MRG_RXBUF", 15), ("STATUS", 16), ("CTRL_VQ", 17),
                                     ("GUEST_ANNOUNCE", 21), ("VERSION_1", 32)]
        for (name, bit) in bits { #expect(offered & 1 << bit != 0, "\(name) offered") }
    }

    /// A restored guest (no live update: nothing kept) that took GUEST_ANNOUNCE finds ANNOUNCE
    /// in the status with a configuration-change interrupt; its acknowledgement clears it.
    @Test func aRestoredGuestIsAskedToAnnounceItselfAndItsAcknowledgementClearsIt() throws {
        let wire = try TapWire()
        let features = Guest.baseFeatures | NetworkFeature.controlQueue | NetworkFeature.guestAnnounce
        let old = try Guest(tap: wire.tap, features: features)
        old.thread.stop()
        let transport = old.device.saveState()
        let guest = try Guest(continuing: old, transport: transport, kept: nil)
        #expect(guest.configuration(6, size: 2) == UInt64(NetworkStatus.linkUp | NetworkStatus.announce))
        #expect(guest.interrupts.value == 1)
        #expect(guest.register(0x60) & 2 != 0, "configuration-change interrupt status")
        #expect(guest.register(0xfc) == transport.configurationGeneration &+ 1)
        let acknowledged = try #require(try guest.command(class: NetworkControl.announceClass, NetworkControl.announceAcknowledge))
        #expect(acknowledged.ack == NetworkControl.ok && acknowledged.written == 1)
        #expect(guest.configuration(6, size: 2) == UInt64(NetworkStatus.linkUp))
    }

    /// Without GUEST_ANNOUNCE the driver is asked nothing; the device announces the guest
    /// itself with QEMU's self-announce frame, a broadcast RARP from the guest's MAC.
    @Test func aRestoredGuestWithoutGuestAnnounceIsAnnouncedByTheDevice() throws {
        let wire = try TapWire()
        let old = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.controlQueue)
        old.thread.stop()
        let guest = try Guest(continuing: old, transport: old.device.saveState(), kept: nil)
        #expect(guest.configuration(6, size: 2) == UInt64(NetworkStatus.linkUp))
        #expect(guest.interrupts.value == 0)
        let frame = try #require(wire.receive(), "the device sends an announcement on the tap")
        #expect(frame.count >= 42 && Array(frame[0..<6]) == [UInt8](repeating: 0xff, count: 6) && Array(frame[6..<12]) == Guest.mac.bytes)
        #expect(frame.count >= 42 && Array(frame[12..<14]) == [0x80, 0x35] && Array(frame[20..<22]) == [0, 3], "a RARP request")
        #expect(frame.count >= 42 && Array(frame[22..<28]) == Guest.mac.bytes && Array(frame[32..<38]) == Guest.mac.bytes)
    }

    /// Classes Engram does not offer (receive filters, MAC changes, queue pairs) and unknown
    /// ones are refused with VIRTIO_NET_ERR; a command too short to name one too.
    @Test func commandsOtherThanTheAnnounceAcknowledgementAreRefused() throws {
        let wire = try TapWire()
        let guest = try Guest(tap: wire.tap, features: Guest.baseFeatures | NetworkFeature.controlQueue | NetworkFeature.guestAnnounce)
        for (commandClass, command, data) in [(UInt8(0), UInt8(0), [UInt8(1)]), (1, 1, [UInt8](repeating: 0, count: 6)), (3, 1, []), (0x7f, 0, [])] {
            let answer = try #require(try guest.command(class: commandClass, command, data: data))
            #expect(answer.ack == NetworkControl.error && answer.written == 1, "class \(commandClass) command \(command)")
        }
        #expect(try guest.command(class: NetworkControl.announceClass, NetworkControl.announceAcknowledge)?.ack == NetworkControl.ok)
        #expect(!guest.needsReset)
    }
}

import Foundation
import Glibc
import LinuxSystem
import Testing

/// Messages with descriptors attached, over a real socket pair: what arrives is the same open
/// file; a closed peer, a silent one and a descriptor count mismatch are plain errors.
@Suite struct DescriptorChannelTests {
    @Test func aMessageCarriesItsBytesAndOpenDescriptors() throws {
        let (here, theirs) = try DescriptorChannel.pair(peer: "the test peer")
        let there = DescriptorChannel(taking: theirs, peer: "this end")
        let pipe = try LinuxSystem.Pipe()
        let ends = [pipe.readEnd.rawValue, pipe.writeEnd.rawValue]
        // Larger than the socket's buffer: sent from another thread while this one receives.
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let writer = ends[1]
        let sending = Thread { try? here.send(big, descriptors: [writer]) }
        sending.start()
        let (payload, descriptors) = try there.receive(timeoutMilliseconds: 5000)
        #expect(payload == big)
        #expect(descriptors.count == 1)
        // The descriptor that arrived writes into the same pipe.
        var byte: UInt8 = 42
        #expect(write(descriptors[0].rawValue, &byte, 1) == 1)
        var back: UInt8 = 0
        #expect(read(ends[0], &back, 1) == 1 && back == 42)
        #expect(ProcessImage.isCloseOnExec(descriptors[0].rawValue) == true)
        // An empty message, no descriptors.
        try there.send([])
        let empty = try here.receive(timeoutMilliseconds: 5000)
        #expect(empty.payload.isEmpty && empty.descriptors.isEmpty)
    }

    @Test func aClosedOrSilentPeerIsAnError() throws {
        let (here, theirs) = try DescriptorChannel.pair(peer: "the new VMM")
        #expect(throws: SystemError.failed("recvmsg", on: "the new VMM", .timedOut)) { _ = try here.receive(timeoutMilliseconds: 50) }
        close(theirs.release())
        #expect(throws: SystemError.closed(peer: "the new VMM")) { _ = try here.receive(timeoutMilliseconds: 5000) }
        #expect(throws: SystemError.closed(peer: "the new VMM")) { try here.send([1]) }
    }

    /// A peer that is there but does not read (a stopped process) cannot hold a sender whose
    /// message is larger than the socket's buffer: the send ends at its deadline.
    @Test func aPeerThatDoesNotReadEndsASendAtItsDeadline() throws {
        let (here, theirs) = try DescriptorChannel.pair(peer: "the new VMM")
        defer { withExtendedLifetime(theirs) {} }
        let big = [UInt8](repeating: 7, count: 4 << 20)
        #expect(throws: SystemError.failed("sendmsg", on: "the new VMM", .timedOut)) { try here.send(big, timeoutMilliseconds: 200) }
    }
}

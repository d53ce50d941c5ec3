@testable import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Testing
import TestSupport

/// vsock's host side across a live update, in one process: the device hands over its listener,
/// streams and connection table, and a second device built over the same guest memory (as the
/// new VMM builds it) continues from them with no byte lost or repeated.
@Suite struct VsockHandoverTests {
    private let directory = TemporaryDirectory()
    private var path: String { directory.path("v.sock") }
    typealias Op = VirtioVsockTests.Op

    private func sample() -> VsockHandoverState {
        var state = VsockHandoverState()
        state.nextLocalPort = (1 << 30) + 7
        state.transportResetPending = true
        state.connections = [
            .init(key: VsockKey(localPort: 1 << 30, peerPort: 5000), flags: [.hostInitiated, .established, .hostReadable],
                  peerBufferAllocation: 32768, peerForwardCount: 100, sentBytes: 200, receivedBytes: 300, forwarded: 250,
                  advertisedForwardCount: 240, outbound: Array(repeating: 9, count: 50)),
            .init(key: VsockKey(localPort: 6000, peerPort: 50000), flags: [.owesResponse, .established, .guestStoppedSending]),
        ]
        state.scheduled = [VsockKey(localPort: 6000, peerPort: 50000)]
        state.handshakes = [.init(id: 4, line: Array("CONNECT 50".utf8))]
        var reset = VsockHeader()
        reset.operation = VsockOperation.reset
        reset.destinationPort = 12
        state.control = [reset]
        return state
    }

    @Test func theConnectionTableRoundTrips() throws {
        let state = sample()
        #expect(try VsockHandoverState(decoding: state.encoded()) == state)
        #expect(try VsockHandoverState(decoding: VsockHandoverState().encoded()) == VsockHandoverState())
    }

    @Test func everyTruncationIsRefusedNamingTheField() throws {
        let bytes = sample().encoded()
        for length in 0..<bytes.count {
            #expect(throws: VirtioHandoverError.self, "\(length) bytes") { _ = try VsockHandoverState(decoding: Array(bytes.prefix(length))) }
        }
        do {
            _ = try VsockHandoverState(decoding: Array(bytes.prefix(22)))
            Issue.record("a table cut short decoded")
        } catch {
            #expect(error.description == "vsock connection table: cut short at byte 21, in connection 0's flags", "\(error)")
        }
    }

    /// Each malformed table is refused with one line naming what was wrong.
    @Test func malformedTablesAreRefusedInOneLine() throws {
        func refusal(_ change: (inout [UInt8]) -> Void) -> String? {
            var bytes = sample().encoded()
            change(&bytes)
            do { _ = try VsockHandoverState(decoding: bytes); return nil } catch { return error.description }
        }
        func put32(_ value: UInt32, _ bytes: inout [UInt8], at offset: Int) {
            for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        // Layout of the sample: version 0, next port 4, reset 8, count 9, connection 0 from 13
        // (ports 13/17, flags 21, six counters 23..<47, buffered length 47, 50 bytes from 51).
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("version 2; this Engram reads version 1", { put32(2, &$0, at: 0) }),
            ("transport reset flag 2; expected 0 or 1", { $0[8] = 2 }),
            ("the connection count is 5000; at most 1024", { put32(5000, &$0, at: 9) }),
            ("connection 0 has unknown flags 0x8043", { $0[22] = 0x80 }),
            ("connection 0's buffered length is 1000000; at most 262144", { put32(1_000_000, &$0, at: 47) }),
            ("4 bytes after its end", { $0 += [0, 0, 0, 0] }),
        ]
        for (expected, change) in cases {
            let message = refusal(change)
            #expect(message == "vsock connection table: \(expected)", "\(message ?? "accepted")")
            #expect(message?.contains("\n") != true)
        }
        var twice = sample()
        twice.connections[1].key = twice.connections[0].key
        twice.scheduled = []
        #expect(throws: VirtioHandoverError.malformed(what: "vsock connection table", reason: "connection 1 repeats guest port 5000, host port 1073741824")) {
            _ = try VsockHandoverState(decoding: twice.encoded())
        }
        var stray = sample()
        stray.scheduled = [VsockKey(localPort: 1, peerPort: 2)]
        #expect(throws: VirtioHandoverError.self) { _ = try VsockHandoverState(decoding: stray.encoded()) }
    }

    @Test func theByteRingGivesBackItsBytesInOrderAcrossItsEnd() {
        var ring = VsockByteRing(capacity: 8)
        ring.append([1, 2, 3, 4, 5, 6])
        ring.consume(4)
        ring.append([7, 8, 9, 10, 11])
        #expect(ring.contents == [5, 6, 7, 8, 9, 10, 11])
        var copy = VsockByteRing(capacity: 8)
        copy.append(ring.contents)
        #expect(copy.contents == ring.contents)
    }

    /// The host side keeps everything across the handover: bytes the guest sent that the host
    /// socket had no room for, a client half-way through its CONNECT line, the credit counters.
    @Test func aSecondDeviceContinuesEveryConnectionWithNoByteLost() throws {
        let old = try VsockTestGuest(path: path)
        let (client, hostPort) = try VirtioVsockTests.connectFromHost(old, port: 5000)
        // The guest sends more than the host socket holds: the rest waits in the device.
        let total = 5 * (64 << 10)  // more than a Unix socket buffers, within the device's credit
        let payload = (0..<total).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9) }
        for start in stride(from: 0, to: total, by: 64 << 10) {
            try old.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.rw, payload: Array(payload[start..<start + (64 << 10)]))
        }
        let partial = try NonBlockingStream.connect(unixPath: path)
        partial.write(Array("CONNECT 50".utf8))
        #expect(old.wait(5) { old.device.withBackend { ($0 as? VirtioVsock)?.handshakes.values.first?.line.count } == 10 })
        old.thread.stop()
        let transport = old.device.saveState()
        let handover = try #require(old.device.handOver())
        let state = try VsockHandoverState(decoding: handover.state)
        #expect(state.connections.count == 1 && state.handshakes.count == 1)
        #expect(!state.connections[0].outbound.isEmpty, "bytes waited in the device")
        #expect(state.handshakes[0].line == Array("CONNECT 50".utf8))
        #expect(handover.descriptors.map(\.name).sorted() == ["conn.5000.\(hostPort)", "handshake.\(state.handshakes[0].id)", "listener"])

        // The new process finds the same descriptors open (here: duplicates).
        let kept = VirtioHandover(descriptors: handover.descriptors.map { .init(name: $0.name, descriptor: dup($0.descriptor)) }, state: handover.state)
        let new = try VsockTestGuest(continuing: old, transport: transport, kept: kept)
        #expect(client.read(count: total, within: 10) == payload, "every byte once, in order")
        /// The next packet other than a credit update (the device sends those as the host takes bytes).
        func next() throws -> VsockTestGuest.Packet? {
            while let packet = try new.receive() { if packet.operation != Op.creditUpdate { return packet } }
            return nil
        }
        partial.write(Array("01\n".utf8))
        let request = try #require(try next())
        #expect(request.operation == Op.request && request.destinationPort == 5001)
        // Credit counters carried on: fwd_cnt counts every byte the host took.
        try new.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.creditRequest)
        var update = try #require(try new.receive())
        while update.operation == Op.creditUpdate && update.forwardCount != UInt32(total), let later = try new.receive(within: 1) { update = later }
        #expect(update.operation == Op.creditUpdate && update.forwardCount == UInt32(total))
        client.write(Array("still here".utf8))
        let data = try #require(try next())
        #expect(data.operation == Op.rw && data.payload == Array("still here".utf8))
        #expect(new.usedIndex(new.events) == 0, "no transport reset")
        withExtendedLifetime(old) {}
    }

    /// A handover naming a stream that was not kept is refused, and the device is left reset.
    @Test func aHandoverWithoutItsDescriptorsIsRefused() throws {
        let old = try VsockTestGuest(path: path)
        _ = try VirtioVsockTests.connectFromHost(old, port: 5000)
        old.thread.stop()
        let transport = old.device.saveState()
        let handover = try #require(old.device.handOver())
        let listener = try #require(handover.descriptor(named: "listener"))
        let kept = VirtioHandover(descriptors: [.init(name: "listener", descriptor: dup(listener))], state: handover.state)
        do {
            _ = try VsockTestGuest(continuing: old, transport: transport, kept: kept)
            Issue.record("a handover without its streams was taken up")
        } catch {
            #expect("\(error)".hasPrefix("virtio device vsock0: cannot continue its host side across the update: the handed-over state names descriptor conn.5000."), "\(error)")
        }
        withExtendedLifetime(old) {}
    }
}

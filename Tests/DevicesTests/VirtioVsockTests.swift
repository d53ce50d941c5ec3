import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Synchronization
import Testing
import TestSupport

/// virtio-vsock against a spec driver and real Unix sockets: Firecracker's handshake both ways,
/// credit in both directions, packets waiting for receive buffers, resets, the transport-reset
/// event, and guest headers that break the rules.
@Suite struct VirtioVsockTests {
    private let directory = TemporaryDirectory()
    private var path: String { directory.path("v.sock") }

    enum Op {
        static let request: UInt16 = 1, response: UInt16 = 2, reset: UInt16 = 3, shutdown: UInt16 = 4
        static let rw: UInt16 = 5, creditUpdate: UInt16 = 6, creditRequest: UInt16 = 7
    }

    /// A host client through Firecracker's handshake to guest port `port`, the guest accepting:
    /// the client, and the device's port for it.
    static func connectFromHost(_ guest: VsockTestGuest, port: UInt32, guestCredit: UInt32 = 64 << 10) throws -> (NonBlockingStream, UInt32) {
        let client = try NonBlockingStream.connect(unixPath: guest.path)
        client.write(Array("CONNECT \(port)\n".utf8))
        let request = try #require(try guest.receive())
        #expect(request.operation == Op.request)
        #expect(request.sourceCID == 2 && request.destinationCID == 3 && request.destinationPort == port)
        #expect(request.sourcePort >= 1 << 30)
        try guest.send(sourcePort: port, destinationPort: request.sourcePort, operation: Op.response, bufferAllocation: guestCredit)
        #expect(client.readLine() == "OK \(request.sourcePort)")
        return (client, request.sourcePort)
    }

    @Test func configurationSpaceHoldsTheGuestCIDAndThereAreThreeQueues() throws {
        let guest = try VsockTestGuest(path: path)
        #expect(guest.register(0x008) == 19)
        #expect(guest.device.read(offset: 0x100, size: 8) == 3)
        guest.setRegister(0x30, 2)
        #expect(guest.register(0x034) == 8)
        guest.setRegister(0x30, 3)
        #expect(guest.register(0x034) == 0)
        let mode = try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode & 0o777 == 0o600)
    }

    @Test func aHostClientReachesAGuestPortAndBytesFlowBothWays() throws {
        let guest = try VsockTestGuest(path: path)
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000)
        client.write(Array("hello".utf8))
        let data = try #require(try guest.receive())
        #expect(data.operation == Op.rw && data.payload == Array("hello".utf8) && data.destinationPort == 5000 && data.sourcePort == hostPort)
        #expect(data.bufferAllocation == UInt32(VirtioVsock.bufferAllocation))
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.rw, forwardCount: 5, payload: Array("world".utf8))
        #expect(client.read(count: 5) == Array("world".utf8))
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.reset)
        #expect(client.closes(), "the guest's RST closes the host stream")
        #expect(guest.counters.connectionsOpen.load(ordering: .relaxed) == 0)
    }

    @Test func aGuestRSTToTheRequestClosesTheHostClient() throws {
        let guest = try VsockTestGuest(path: path)
        let client = try NonBlockingStream.connect(unixPath: path)
        client.write(Array("CONNECT 7\n".utf8))
        let request = try #require(try guest.receive())
        try guest.send(sourcePort: 7, destinationPort: request.sourcePort, operation: Op.reset)
        #expect(client.closes())
    }

    /// A guest that never answers a host client's REQUEST: after Firecracker's 2 s the client is
    /// closed and the guest sent RST; a RESPONSE after that meets no connection. The device's
    /// clock runs ahead of the real one by what the test adds, so nothing waits 2 s.
    @Test func aRequestTheGuestLeavesUnansweredTimesOut() throws {
        let ahead = Atomic<UInt64>(0)
        let guest = try VsockTestGuest(path: path, clock: { MonotonicClock.nanoseconds() + ahead.load(ordering: .relaxed) })
        let client = try NonBlockingStream.connect(unixPath: path)
        client.write(Array("CONNECT 7\n".utf8))
        let request = try #require(try guest.receive())
        #expect(request.operation == Op.request)
        #expect(guest.device.timerDeadline != nil, "the I/O thread comes back for it")
        guest.device.serveQueue(1)
        #expect(guest.counters.requestTimeouts.load(ordering: .relaxed) == 0 && guest.counters.connectionsOpen.load(ordering: .relaxed) == 1)
        ahead.store(VirtioVsock.requestTimeout, ordering: .relaxed)
        guest.device.serveQueue(1)
        #expect(client.closes(), "the client is closed")
        let reset = try #require(try guest.receive())
        #expect(reset.operation == Op.reset && reset.sourcePort == request.sourcePort && reset.destinationPort == 7)
        #expect(guest.counters.requestTimeouts.load(ordering: .relaxed) == 1 && guest.counters.connectionsOpen.load(ordering: .relaxed) == 0)
        #expect(guest.device.timerDeadline == nil)
        try guest.send(sourcePort: 7, destinationPort: request.sourcePort, operation: Op.response)
        let late = try #require(try guest.receive())
        #expect(late.operation == Op.reset, "a late RESPONSE is refused")
    }

    @Test func aBadHandshakeLineClosesTheClient() throws {
        let guest = try VsockTestGuest(path: path)
        for line in ["HELLO 5\n", "CONNECT x\n", "CONNECT 99999999999\n", String(repeating: "A", count: 100)] {
            let client = try NonBlockingStream.connect(unixPath: path)
            client.write(Array(line.utf8))
            #expect(client.closes(), "\(line)")
        }
        #expect(try guest.receive(within: 0.2) == nil, "no REQUEST reached the guest")
    }

    @Test func aGuestConnectionReachesTheHostListenerAtPathUnderscorePort() throws {
        let guest = try VsockTestGuest(path: path)
        let listener = try UnixStreamListener(path: path + "_6000")
        try guest.send(sourcePort: 50000, destinationPort: 6000, operation: Op.request)
        let response = try #require(try guest.receive())
        #expect(response.operation == Op.response && response.destinationPort == 50000 && response.sourcePort == 6000)
        var accepted: NonBlockingStream?
        _ = guest.wait(5) { accepted = listener.accept(); return accepted != nil }
        let server = try #require(accepted)
        try guest.send(sourcePort: 50000, destinationPort: 6000, operation: Op.rw, payload: Array("ping".utf8))
        #expect(server.read(count: 4) == Array("ping".utf8))
        server.write(Array("pong".utf8))
        let reply = try #require(try guest.receive())
        #expect(reply.operation == Op.rw && reply.payload == Array("pong".utf8))
        // Nobody listens on 6001: RST.
        try guest.send(sourcePort: 50001, destinationPort: 6001, operation: Op.request)
        let refused = try #require(try guest.receive())
        #expect(refused.operation == Op.reset && refused.destinationPort == 50001)
        // SHUTDOWN both ways: the host sees the end, the guest gets RST.
        try guest.send(sourcePort: 50000, destinationPort: 6000, operation: Op.shutdown, flags: 3)
        #expect(server.closes())
        let reset = try #require(try guest.receive())
        #expect(reset.operation == Op.reset && reset.destinationPort == 50000)
    }

    @Test func aHostListenerThatNeverAcceptsDoesNotHoldTheDeviceUp() throws {
        let guest = try VsockTestGuest(path: path)
        let listener = try UnixStreamListener(path: path + "_7000", backlog: 1)
        var answers: [UInt16] = []
        for port in UInt32(40000)..<40008 {
            try guest.send(sourcePort: port, destinationPort: 7000, operation: Op.request)
            answers.append(try #require(try guest.receive()).operation)
        }
        #expect(answers.prefix(2).allSatisfy { $0 == Op.response }, "\(answers)")
        #expect(answers.contains(Op.reset), "a full backlog is refused at once: \(answers)")
        _ = try Self.connectFromHost(guest, port: 5000)
        withExtendedLifetime(listener) {}
    }

    @Test func theGuestNeverGetsMoreThanItsCreditAndResumesOnCreditUpdate() throws {
        let guest = try VsockTestGuest(path: path)
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000, guestCredit: 8192)
        client.write([UInt8](repeating: 7, count: 20000))
        var received = 0
        while let packet = try guest.receive(within: 0.3) { received += packet.payload.count }
        #expect(received == 8192, "no more than the guest's buf_alloc")
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.creditUpdate, bufferAllocation: 8192, forwardCount: 8192)
        while let packet = try guest.receive(within: 0.3) { received += packet.payload.count }
        #expect(received == 16384)
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.creditUpdate, bufferAllocation: 1 << 20, forwardCount: 16384)
        while let packet = try guest.receive(within: 0.3) { received += packet.payload.count }
        #expect(received == 20000)
    }

    @Test func aCreditRequestIsAnsweredWithTheDevicesCredit() throws {
        let guest = try VsockTestGuest(path: path)
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000)
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.creditRequest)
        let update = try #require(try guest.receive())
        #expect(update.operation == Op.creditUpdate && update.bufferAllocation == UInt32(VirtioVsock.bufferAllocation) && update.forwardCount == 0)
        // The client going away is the end of the host's input: SHUTDOWN (will send no more).
        withExtendedLifetime(client) {}
        client.shutdown(reading: false, writing: true)
        let shutdown = try #require(try guest.receive())
        #expect(shutdown.operation == Op.shutdown && shutdown.flags == 2)
    }

    @Test func sendingPastTheDevicesCreditIsReset() throws {
        let guest = try VsockTestGuest(path: path)
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000)
        // The host never reads: once its socket and the device's credit are full, the next packet is over the line.
        var sent = 0
        while guest.counters.creditViolations.load(ordering: .relaxed) == 0 && sent < 64 << 20 {
            try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: Op.rw, payload: [UInt8](repeating: 1, count: 64 << 10))
            sent += 64 << 10
        }
        #expect(guest.counters.creditViolations.load(ordering: .relaxed) == 1)
        #expect(sent > VirtioVsock.bufferAllocation)
        var sawReset = false
        while let packet = try guest.receive(within: 0.5) { if packet.operation == Op.reset { sawReset = true } }
        #expect(sawReset)
        #expect(client.closes(within: 10))
    }

    @Test func packetsWaitForReceiveBuffers() throws {
        let guest = try VsockTestGuest(path: path)
        // Take every receive buffer the guest posted, so nothing can be delivered.
        var clients: [NonBlockingStream] = []
        for index in 0..<40 {
            let client = try NonBlockingStream.connect(unixPath: path)
            client.write(Array("CONNECT \(6000 + index)\n".utf8))
            clients.append(client)
        }
        var ports: Set<UInt32> = []
        while let packet = try guest.receive(within: 1) {
            #expect(packet.operation == Op.request)
            ports.insert(packet.destinationPort)
            if ports.count == 40 { break }
        }
        #expect(ports.count == 40, "all 40 REQUESTs arrive through 32 buffers as they come back")
        #expect(!guest.needsReset)
        _ = clients
    }

    @Test func transportResetDropsConnectionsAndKeepsTheListener() throws {
        let guest = try VsockTestGuest(path: path)
        let (first, _) = try Self.connectFromHost(guest, port: 5000)
        let (second, _) = try Self.connectFromHost(guest, port: 5001)
        guest.device.withBackend { ($0 as? VirtioVsock)?.resetTransport() }
        #expect(guest.wait(5) { guest.usedIndex(guest.events) == 1 })
        let entry = try guest.usedEntry(guest.events, 0)
        #expect(entry.length == 4)
        #expect(try guest.memory.read(count: 4, at: GuestAddress(0x3f0000 + 16 * UInt64(entry.head))) == [0, 0, 0, 0], "event id 0: TRANSPORT_RESET")
        #expect(first.closes() && second.closes())
        #expect(guest.counters.connectionsOpen.load(ordering: .relaxed) == 0)
        _ = try Self.connectFromHost(guest, port: 5002)
    }

    @Test func hostileHeadersAreRefusedWithRSTAndNeverBreakTheDevice() throws {
        let guest = try VsockTestGuest(path: path)
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000)
        let before = guest.counters.refused.load(ordering: .relaxed)
        try guest.send(source: 9, sourcePort: 1, destinationPort: 2, operation: Op.request)
        try guest.send(destination: 7, sourcePort: 1, destinationPort: 2, operation: Op.request)
        try guest.send(sourcePort: 1, destinationPort: 2, operation: Op.request, type: 2)
        try guest.send(sourcePort: 1, destinationPort: 2, operation: Op.rw, payload: [1, 2, 3], claimedLength: 4000)
        try guest.send(sourcePort: 1, destinationPort: 2, operation: Op.rw, claimedLength: 1 << 20)
        try guest.send(sourcePort: 1, destinationPort: 2, operation: Op.rw, payload: [1])
        try guest.send(sourcePort: 1, destinationPort: 2, operation: Op.reset)
        var resets = 0
        while let packet = try guest.receive(within: 0.3) {
            #expect(packet.operation == Op.reset && packet.destinationPort == 1)
            resets += 1
        }
        #expect(resets == 6, "one RST each, none for a RST")
        #expect(guest.counters.refused.load(ordering: .relaxed) - before == 6)
        // An unknown operation on a live connection resets it and closes the host side.
        try guest.send(sourcePort: 5000, destinationPort: hostPort, operation: 99)
        let reset = try #require(try guest.receive())
        #expect(reset.operation == Op.reset && reset.destinationPort == 5000)
        #expect(client.closes())
        // A header cut short is dropped.
        try guest.memory.write([UInt8](repeating: 0, count: 44), at: GuestAddress(0x200000))
        try guest.writeDescriptor(guest.tx, 0, address: 0x200000, length: 20, flags: 0, next: 0)
        try guest.publish(&guest.tx, head: 0)
        #expect(guest.wait(5) { guest.usedIndex(guest.tx) == guest.tx.availableIndex })
        #expect(!guest.needsReset)
        _ = try Self.connectFromHost(guest, port: 5001)
    }

    @Test func randomGuestPacketsNeverBreakTheDeviceOrTheHost() throws {
        let guest = try VsockTestGuest(path: path)
        let listener = try UnixStreamListener(path: path + "_80")
        let (client, hostPort) = try Self.connectFromHost(guest, port: 5000)
        var state: UInt64 = 0x1234_5678
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        for _ in 0..<400 {
            let payload = [UInt8](repeating: UInt8(truncatingIfNeeded: next()), count: Int(next() % 3 == 0 ? next() % 5000 : 0))
            try guest.send(source: next() % 8 == 0 ? next() : 3, destination: next() % 8 == 0 ? next() % 4 : 2,
                           sourcePort: next() % 2 == 0 ? 5000 : UInt32(truncatingIfNeeded: next() % 4), destinationPort: next() % 2 == 0 ? hostPort : 80,
                           operation: UInt16(next() % 9), type: next() % 10 == 0 ? 2 : 1, flags: UInt32(truncatingIfNeeded: next() % 4),
                           bufferAllocation: UInt32(truncatingIfNeeded: next()), forwardCount: UInt32(truncatingIfNeeded: next()),
                           payload: payload, claimedLength: next() % 6 == 0 ? UInt32(truncatingIfNeeded: next()) : nil)
            while try guest.receive(within: 0) != nil {}
            _ = listener.accept()
        }
        #expect(!guest.needsReset)
        _ = client.closes(within: 0.1)
        while try guest.receive(within: 0.2) != nil {}
        _ = try Self.connectFromHost(guest, port: 5001)
    }

    @Test func theListenerRefusesAFileInTheWayAndReplacesAStaleSocket() throws {
        let file = directory.path("plain")
        FileManager.default.createFile(atPath: file, contents: Data([1]))
        #expect(throws: SystemError.self) { _ = try VirtioVsock(guestCID: 3, path: file) }
        #expect(FileManager.default.fileExists(atPath: file))
        let stale = directory.path("stale.sock")
        let old = try UnixSocketPath.bind(stale)
        _ = old
        let vsock = try VirtioVsock(guestCID: 3, path: stale)
        #expect(vsock.path == stale)
    }

    @Test func optionsAreCIDAndPath() throws {
        #expect(try VsockConfiguration.parse("3,/tmp/v.sock") == VsockConfiguration(guestCID: 3, path: "/tmp/v.sock"))
        #expect(try VsockConfiguration.parse("52,/tmp/a,b") == VsockConfiguration(guestCID: 52, path: "/tmp/a,b"))
        for bad in ["2,/tmp/v.sock", "0,/x", "4294967295,/x", "x,/x", "3,", "/tmp/v.sock", "3"] {
            #expect(throws: DeviceError.self, "\(bad)") { _ = try VsockConfiguration.parse(bad) }
        }
    }
}

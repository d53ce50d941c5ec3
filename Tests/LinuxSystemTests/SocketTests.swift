import Glibc
import Synchronization
import Testing
import TestSupport
@testable import LinuxSystem

/// Stream sockets over loopback TCP and a Unix path: one implementation for both.
@Suite struct SocketTests {
    @Test func tcpRoundTripAndPeerNames() throws {
        let listener = try ListeningSocket(endpoint: Endpoint(host: "127.0.0.1", port: 0))
        #expect(listener.boundPort != 0)
        let client = try StreamSocket.connect(to: Endpoint(host: "127.0.0.1", port: listener.boundPort), timeoutMilliseconds: 2000)
        let server = try listener.accept()
        #expect(server.peer.hasPrefix("127.0.0.1:"))
        #expect(ProcessImage.isCloseOnExec(server.rawValue) == true)
        try client.send(Array("ping".utf8))
        var buffer = [UInt8](repeating: 0, count: 16)
        var received = 0
        while received < 4 { received += try server.receive(into: &buffer, at: received, count: 16 - received) }
        #expect(Array(buffer[0..<4]) == Array("ping".utf8))
        client.shutdown()
        #expect(throws: SystemError.closed(peer: server.peer)) { _ = try server.receive(into: &buffer, at: 0, count: 16) }
    }

    @Test func ipv6PeersAreBracketed() throws {
        guard let listener = try? ListeningSocket(endpoint: Endpoint(host: "::1", port: 0)) else { return }  // no IPv6 loopback here
        #expect(listener.endpoint.description == "[::1]:0")
        let client = try StreamSocket.connect(to: Endpoint(host: "::1", port: listener.boundPort), timeoutMilliseconds: 2000)
        let server = try listener.accept()
        #expect(server.peer.hasPrefix("[::1]:"))
        #expect(client.peer == "[::1]:\(listener.boundPort)")
    }

    @Test func aSecondListenerOnThePortIsRefused() throws {
        let first = try ListeningSocket(endpoint: Endpoint(host: "127.0.0.1", port: 0))
        let endpoint = Endpoint(host: "127.0.0.1", port: first.boundPort)
        #expect(throws: SystemError.addressInUse(endpoint.description)) { _ = try ListeningSocket(endpoint: endpoint) }
    }

    @Test func aReceiveTimeoutSaysTimedOut() throws {
        let listener = try ListeningSocket(endpoint: Endpoint(host: "127.0.0.1", port: 0))
        let client = try StreamSocket.connect(to: Endpoint(host: "127.0.0.1", port: listener.boundPort), timeoutMilliseconds: 2000)
        let server = try listener.accept()  // kept open: the client's read waits, not sees the end
        client.setReceiveTimeout(milliseconds: 50)
        var buffer = [UInt8](repeating: 0, count: 4)
        let error = #expect(throws: SystemError.self) { _ = try client.receive(into: &buffer, at: 0, count: 4) }
        #expect(error?.isTimeout == true, "\(String(describing: error))")
        withExtendedLifetime(server) {}
    }

    @Test func shutdownWakesABlockedAccept() throws {
        let listener = try ListeningSocket(endpoint: Endpoint(host: "127.0.0.1", port: 0))
        final class Flag: Sendable { let value = Atomic(false) }
        let ended = Flag()
        let thread = try NamedThread.spawn(name: "accept-test", role: .control) {
            _ = try? listener.accept()
            ended.value.store(true, ordering: .relaxed)
        }
        usleep(20_000)
        listener.shutdown()
        thread.join()
        let didEnd = ended.value.load(ordering: .relaxed)
        #expect(didEnd)
    }

    @Test func unixSocketsConnectByPath() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("s")
        let bound = try UnixSocketPath.bind(path)
        #expect(listen(bound.rawValue, 4) == 0)
        let client = try StreamSocket.connect(unixPath: path)
        #expect(client.peer == path)
        try client.send([1, 2, 3])
        #expect(throws: SystemError.self) { _ = try StreamSocket.connect(unixPath: directory.path("missing")) }
    }

    @Test func waitForInputWakesOnTheNotifier() throws {
        let listener = try ListeningSocket(endpoint: Endpoint(host: "127.0.0.1", port: 0))
        let client = try StreamSocket.connect(to: Endpoint(host: "127.0.0.1", port: listener.boundPort), timeoutMilliseconds: 2000)
        let server = try listener.accept()
        let wake = try EventNotifier()
        wake.signal()
        #expect(try server.waitForInput(orWake: wake) == false)
        #expect(!wake.isSignaled)
        try client.send([9])
        #expect(try server.waitForInput(orWake: wake) == true)
    }
}

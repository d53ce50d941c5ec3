@testable import engram
import Foundation
import Glibc
import Testing

/// Keys from display viewers wait for the guest in a queue of bounded length.
@Suite struct KeyForwarderTests {
    /// A Unix socket that listens and never accepts: a VM whose control thread does not answer.
    private static func silentSocket(at path: String) throws -> CInt {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() where index < raw.count - 1 { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(fd, 16) == 0)
        return fd
    }

    /// A viewer typing faster than the VM takes keys (here the VM does not answer at all) fills
    /// the queue to its limit, and the rest are dropped: the display's memory does not grow.
    @Test func theQueueOfKeysIsBounded() throws {
        let path = NSTemporaryDirectory() + "engram-keys-\(getpid()).sock"
        unlink(path)
        let listener = try Self.silentSocket(at: path)
        defer { close(listener); unlink(path) }
        let forwarder = KeyForwarder(socketPath: path)
        // The first key starts a delivery, which then waits on the silent VM while the rest arrive.
        for index in 0..<(3 * KeyForwarder.queueLimit) { forwarder.send(keysym: 0x61, down: index % 2 == 0) }
        #expect(forwarder.queuedCount <= KeyForwarder.queueLimit)
        #expect(forwarder.queuedCount >= KeyForwarder.queueLimit - 1024, "the queue filled while the VM was silent")
    }
}

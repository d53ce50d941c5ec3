import LinuxSystem
import Foundation
import Synchronization
@testable import Transport

/// A TCP relay between clients and a page server, which a test can cut (every relayed
/// connection ends at once, as when the network drops), take down (new connections are
/// accepted and closed at once, as while the server restarts) and point at another server.
final class Relay: Sendable {
    let endpoint: Endpoint
    private let listener: ListeningSocket
    /// Where new connections go; nil while the relay is down.
    private let upstream: Locked<Endpoint?>
    private let live = Locked<[StreamSocket]>([])
    /// While set, the server's larger bursts reach the client with one byte flipped.
    private let corrupting = Atomic<Bool>(false)
    /// The first 16 MiB the servers sent, as they crossed the relay.
    private let seen = Locked<[UInt8]>([])

    init(to target: Endpoint) throws {
        let listener = try TransportFixture.listening { try ListeningSocket(endpoint: $0) }
        self.listener = listener
        endpoint = try Endpoint(parsing: "127.0.0.1:\(listener.boundPort)")
        upstream = Locked(target)
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Damages what the server sends from now on (or stops doing so): in each burst of at least
    /// 32 KiB, the byte in the middle, which lies in page data (a PAGES frame's header and
    /// records are at most 12 KiB, and small answers are left alone).
    func corrupt(_ on: Bool) { corrupting.store(on, ordering: .relaxed) }

    /// What the servers sent so far (up to 16 MiB), as it crossed the network.
    var serverBytes: [UInt8] { seen.withLock { $0 } }

    /// Sends new connections to `target`, or refuses them if nil.
    func point(at target: Endpoint?) { upstream.withLock { $0 = target } }

    /// Ends every connection relayed so far.
    func cut() {
        let sockets = live.withLock { sockets in
            defer { sockets = [] }
            return sockets
        }
        for socket in sockets { socket.shutdown() }
    }

    private func acceptLoop() {
        while let client = try? listener.accept() {
            // Down: the client is closed as soon as `client` goes away.
            guard let target = upstream.withLock({ $0 }), let server = try? StreamSocket.connect(to: target, timeoutMilliseconds: 5000) else {
                continue
            }
            live.withLock { $0 += [client, server] }
            pump(from: client, to: server, damaging: false)
            pump(from: server, to: client, damaging: true)
        }
    }

    /// Copies bytes one way until either end fails, then ends both.
    private func pump(from source: StreamSocket, to destination: StreamSocket, damaging: Bool) {
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = (try? buffer.withUnsafeMutableBytes { try source.receive(into: $0) }) ?? 0
                if damaging, count > 0 {
                    seen.withLock { if $0.count < 16 << 20 { $0 += buffer[0..<count] } }
                }
                if damaging, count >= 32 << 10, corrupting.load(ordering: .relaxed) { buffer[count / 2] ^= 0x40 }
                guard count > 0,
                      (try? buffer.withUnsafeBytes { try destination.send(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }) != nil
                else { break }
            }
            source.shutdown()
            destination.shutdown()
        }
    }
}

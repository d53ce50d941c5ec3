import NIOCore
import Synchronization

/// The server's accepted connections, and whether it is stopping; shared by the accept path and `stop()`.
final class OpenConnections: Sendable {
    private let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
    private let stopping = Atomic<Bool>(false)

    /// True once `stop()` has begun: new requests get 503.
    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Tracks `channel` until it closes; closes it at once if the server is already stopping.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let accepted = channels.withLock { open in
            guard !stopping.load(ordering: .acquiring) else { return false }
            open[id] = channel
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = channels.withLock { $0.removeValue(forKey: id) }
        }
    }

    /// Marks the server as stopping and returns the connections open at that moment.
    func beginStopping() -> [any Channel] {
        channels.withLock { open in
            stopping.store(true, ordering: .releasing)
            return Array(open.values)
        }
    }
}

import LinuxSystem
import NIOCore
import Synchronization

/// The server's accepted connections, and whether it is stopping; shared by the accept path, the
/// connections' handlers and `stop()`.
///
/// At most `maximum` are open. A connection beyond that evicts the oldest one that has no request
/// being answered (silent, idle between requests, or still sending a request), so connections
/// that say nothing cannot keep a client with a request out, nor use up the VMM's descriptors.
/// Only when every open connection waits for an answer is the new one closed instead.
final class OpenConnections: Sendable {
    private struct Entry {
        let channel: any Channel
        let order: UInt64
        var answering = false
    }

    private struct State {
        var open: [ObjectIdentifier: Entry] = [:]
        var accepted: UInt64 = 0
        var evicted = 0
    }

    private let state = Locked(State())
    private let stopping = Atomic<Bool>(false)
    let maximum: Int

    init(maximum: Int) {
        precondition(maximum > 0, "a server must accept at least one connection")
        self.maximum = maximum
    }

    /// True once `stop()` has begun: new requests are not answered (their connections close).
    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Open connections now.
    var count: Int { state.withLock { $0.open.count } }

    /// Connections closed to make room for newer ones, so far.
    var evictedCount: Int { state.withLock { $0.evicted } }

    /// Tracks `channel` until it closes; closes it at once if the server is already stopping, or
    /// if the server is full of connections that all wait for answers. Makes room by closing the
    /// oldest connection with no request being answered.
    func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let (accepted, evict): (Bool, (any Channel)?) = state.withLock { state in
            guard !stopping.load(ordering: .acquiring) else { return (false, nil) }
            var evict: (any Channel)? = nil
            if state.open.count >= maximum {
                guard let oldest = state.open.filter({ !$0.value.answering }).min(by: { $0.value.order < $1.value.order }) else {
                    return (false, nil)
                }
                state.open.removeValue(forKey: oldest.key)
                state.evicted += 1
                evict = oldest.value.channel
            }
            state.accepted += 1
            state.open[id] = Entry(channel: channel, order: state.accepted)
            return (true, evict)
        }
        evict?.close(promise: nil)
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.open.removeValue(forKey: id) }
        }
    }

    /// Whether `channel` has a request being answered (it is then never evicted).
    func setAnswering(_ channel: any Channel, _ answering: Bool) {
        let id = ObjectIdentifier(channel)
        state.withLock { state in state.open[id]?.answering = answering }
    }

    /// Marks the server as stopping and returns the connections open at that moment.
    func beginStopping() -> [any Channel] {
        state.withLock { state in
            stopping.store(true, ordering: .releasing)
            return state.open.values.map(\.channel)
        }
    }
}

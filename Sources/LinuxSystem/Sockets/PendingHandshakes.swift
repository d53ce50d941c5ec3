/// Connections whose peers have not proved the secret yet, each handshaking on a thread of its
/// own: bounded apart from authenticated work, so peers that connect and say nothing can never
/// hold up, or crowd out, one that proves the secret.
///
/// Adding one beyond `maximum` ends the oldest (its socket is shut down, so its thread's read
/// fails at once and the thread ends). `endAll` ends whatever is still pending.
package final class PendingHandshakes: Sendable {
    private struct State {
        var sockets: [Int: StreamSocket] = [:]
        var next = 0
        var ended = false
        var evicted = 0
    }

    private let state = Locked(State())
    private let maximum: Int

    package init(maximum: Int) {
        precondition(maximum > 0, "at least one handshake must be able to wait")
        self.maximum = maximum
    }

    /// Handshakes ended to make room for newer ones, so far.
    package var evictedCount: Int { state.withLock { $0.evicted } }

    /// Adds `socket`'s handshake; returns its ticket. Ends the oldest pending one when full, and
    /// `socket` itself if `endAll` was called already.
    package func add(_ socket: StreamSocket) -> Int {
        let (ticket, evicted): (Int, StreamSocket?) = state.withLock { state in
            if state.ended { return (0, socket) }
            var evicted: StreamSocket? = nil
            if state.sockets.count >= maximum, let oldest = state.sockets.keys.min() {
                evicted = state.sockets.removeValue(forKey: oldest)
                state.evicted += 1
            }
            state.next += 1
            state.sockets[state.next] = socket
            return (state.next, evicted)
        }
        evicted?.shutdown()
        return ticket
    }

    /// The handshake of `ticket` is over (proved, failed or timed out); false if it had been
    /// ended already (by eviction or `endAll`: nothing to report, nothing to serve).
    package func finish(_ ticket: Int) -> Bool {
        state.withLock { state in state.sockets.removeValue(forKey: ticket) != nil && !state.ended }
    }

    /// Ends every handshake still pending, and any added later.
    package func endAll() {
        let sockets = state.withLock { state in
            state.ended = true
            defer { state.sockets = [:] }
            return Array(state.sockets.values)
        }
        for socket in sockets { socket.shutdown() }
    }
}

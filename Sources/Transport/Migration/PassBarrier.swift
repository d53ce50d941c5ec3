import LinuxSystem

/// Keeps a pre-copy's page channels in step at the destination. A page the guest rewrote may
/// come in pass k on one channel and again in pass k+1 on another, so no channel reads pass
/// k+1's frames until every channel has ended pass k; the control connection waits for the
/// same before it goes on (its PASS_END, then the machine state, come after the channels').
/// The first failure on any side wakes every waiter with it.
///
/// `@unchecked Sendable`: every variable is read and written only under `lock`.
package final class PassBarrier: @unchecked Sendable {
    private let lock = ConditionLock()
    /// The last pass each channel has ended.
    private var ended: [UInt32]
    /// Channels the source has closed (after a pass's end).
    private var closed: [Bool]
    private var failed: TransportError?

    package init(channels: Int) {
        ended = Array(repeating: 0, count: channels)
        closed = Array(repeating: false, count: channels)
    }

    /// The first failure, if any.
    package var failure: TransportError? { lock.withLock { failed } }

    /// A channel has ended `pass`: waits until every channel has, then returns.
    package func channel(_ index: Int, ended pass: UInt32) throws(TransportError) {
        try lock.withLock { () throws(TransportError) in
            ended[index] = max(ended[index], pass)
            lock.broadcast()
            try waitForAll(pass)
        }
    }

    /// The control connection's PASS_END for `pass`: waits until every channel has ended it.
    package func waitForChannels(toEnd pass: UInt32) throws(TransportError) {
        try lock.withLock { () throws(TransportError) in try waitForAll(pass) }
    }

    /// A channel's connection closed after its last pass's end: a wait for a later pass fails.
    package func channelClosed(_ index: Int) {
        lock.withLock {
            closed[index] = true
            lock.broadcast()
        }
    }

    /// Ends every wait with `error` (the first one given is kept).
    package func fail(_ error: TransportError) {
        lock.withLock {
            if failed == nil { failed = error }
            lock.broadcast()
        }
    }

    /// Call with the lock held.
    private func waitForAll(_ pass: UInt32) throws(TransportError) {
        while true {
            if let failed { throw failed }
            if ended.allSatisfy({ $0 >= pass }) { return }
            if let index = closed.indices.first(where: { closed[$0] && ended[$0] < pass }) {
                throw .malformed(peer: "the source", reason: "page channel \(index) closed after pass \(ended[index]), before pass \(pass) ended")
            }
            lock.wait()
        }
    }
}

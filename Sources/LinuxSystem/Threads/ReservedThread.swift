/// A thread started ahead of its work: spawned (named, its role's system-call filter installed)
/// while nothing waits, it sleeps until `run` hands it its one body, runs it and ends. A VMM made
/// ready before it knows its VM (a standby VMM, a transfer's new VMM) keeps one per vCPU, so the
/// restore that follows starts its vCPUs by waking threads instead of creating them.
///
/// A reserve never used ends when it is released (`cancel`, or the last reference going away).
package final class ReservedThread: Sendable {
    private let slot: Slot

    /// Spawns the thread; it waits for `run` or `cancel`.
    package init(name: String, role: ThreadRole) throws(SystemError) {
        let slot = Slot()
        self.slot = slot
        try NamedThread.spawnDetached(name: name, role: role) { slot.takeAndRun() }
    }

    deinit { slot.cancel() }

    /// Hands the thread `body`; false (and `body` not run) if it was cancelled or already given one.
    @discardableResult
    package func run(_ body: @escaping @Sendable () -> Void) -> Bool { slot.give(body) }

    /// Ends the thread if it has not been given its body.
    package func cancel() { slot.cancel() }

    /// The body's hand-over, under a lock the waiting thread sleeps on.
    ///
    /// `@unchecked Sendable`: `state` is read and written only under `lock`.
    private final class Slot: @unchecked Sendable {
        private enum State {
            case waiting
            case given(@Sendable () -> Void)
            case taken
            case cancelled
        }

        private let lock = ConditionLock()
        private var state = State.waiting

        func give(_ body: @escaping @Sendable () -> Void) -> Bool {
            lock.withLock {
                guard case .waiting = state else { return false }
                state = .given(body)
                lock.broadcast()
                return true
            }
        }

        func cancel() {
            lock.withLock {
                guard case .waiting = state else { return }
                state = .cancelled
                lock.broadcast()
            }
        }

        /// On the reserved thread: waits for its body (or the end) and runs it.
        func takeAndRun() {
            let body: (@Sendable () -> Void)? = lock.withLock {
                while true {
                    switch state {
                    case .waiting: lock.wait()
                    case .given(let body):
                        state = .taken
                        return body
                    case .taken, .cancelled: return nil
                    }
                }
            }
            body?()
        }
    }
}

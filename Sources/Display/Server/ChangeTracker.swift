import LinuxSystem

/// Finds changed tiles and tells each viewer which ones it has not seen.
///
/// One poller thread compares the live pixels with a shadow copy, but only while some viewer
/// holds an incremental request with nothing to answer it yet; with none waiting it sleeps on
/// the condition and uses no CPU. Changed tiles are added to every viewer's `dirty` set, and
/// waiting viewers are woken through their eventfd; the poller never touches a socket, so a
/// slow viewer cannot slow it or the others down.
///
/// A scan reads the whole screen twice (live and shadow: 6 MiB at 1024x768), so an idle
/// screen is watched slowly: the interval starts at `fastInterval`, and after a second
/// without changes stretches by a quarter each scan up to `idleInterval`. A change or a
/// viewer's key press brings it back to fast at once (the guest is about to draw).
final class ChangeTracker: @unchecked Sendable {
    private let lock = ConditionLock()
    private let fastIntervalMilliseconds: Int
    private let idleIntervalMilliseconds: Int
    // Guarded by `lock`:
    private var sessions: [ClientSession] = []
    private var waitingCount = 0
    private var stopping = false
    private var intervalMilliseconds: Int
    private var quietScans = 0

    init(fastIntervalMilliseconds: Int, idleIntervalMilliseconds: Int) {
        self.fastIntervalMilliseconds = fastIntervalMilliseconds
        self.idleIntervalMilliseconds = max(idleIntervalMilliseconds, fastIntervalMilliseconds)
        intervalMilliseconds = fastIntervalMilliseconds
    }

    var sessionCount: Int { lock.withLock { sessions.count } }

    /// Adds a viewer (with every tile dirty); false once the tracker is stopping.
    /// Adds `session` unless the tracker is stopping or already follows `limit` viewers (checked
    /// under the lock: handshakes that finish at once cannot pass the limit together).
    func register(_ session: ClientSession, limit: Int) -> Bool {
        lock.withLock {
            guard !stopping, sessions.count < limit else { return false }
            sessions.append(session)
            return true
        }
    }

    func unregister(_ session: ClientSession) {
        lock.withLock {
            setWaiting(session, false)
            sessions.removeAll { $0 === session }
        }
    }

    /// The dirty parts of `area` for `session`, as rectangles, clearing the tiles they touch.
    /// When there are none the session waits: the poller runs until a change wakes it.
    func takeChanges(for session: ClientSession, within area: ScreenRectangle) -> [ScreenRectangle] {
        lock.withLock {
            let changes = session.dirty.rectangles(within: area)
            if changes.isEmpty {
                setWaiting(session, true)
            } else {
                // Tiles only partly inside `area` are cleared too: keeping them would answer
                // every later request for the same area with the same tile, forever.
                session.dirty.remove(touching: area, onlyCovered: false)
                setWaiting(session, false)
            }
            return changes
        }
    }

    /// `session` no longer holds an incremental request.
    func stopWaiting(_ session: ClientSession) {
        lock.withLock { setWaiting(session, false) }
    }

    /// `area` was just sent to `session` in full: the tiles wholly inside it are up to date.
    func markSent(_ area: ScreenRectangle, to session: ClientSession) {
        lock.withLock { session.dirty.remove(touching: area, onlyCovered: true) }
    }

    /// The poller's loop; returns once `stop` is called.
    func runPoller(_ shadow: consuming FramebufferShadow) {
        while true {
            let stopped = lock.withLock {
                while !stopping && waitingCount == 0 { lock.wait() }
                return stopping
            }
            if stopped { return }
            let changed = shadow.scan()
            lock.withLock {
                if !changed.isEmpty {
                    for session in sessions {
                        session.dirty.formUnion(changed)
                        if session.waiting { session.wake.signal() }
                    }
                    speedUp()
                } else {
                    quietScans += 1
                    if quietScans * fastIntervalMilliseconds >= 1000 {
                        intervalMilliseconds = min(idleIntervalMilliseconds, intervalMilliseconds + max(1, intervalMilliseconds / 4))
                    }
                }
                if !stopping { lock.wait(milliseconds: intervalMilliseconds) }
            }
        }
    }

    /// A viewer pressed a key: the screen will likely change soon, so watch it closely again.
    func noteInput() {
        lock.withLock {
            guard intervalMilliseconds > fastIntervalMilliseconds else { return }
            speedUp()
            lock.broadcast()
        }
    }

    /// Call with the lock held.
    private func speedUp() {
        intervalMilliseconds = fastIntervalMilliseconds
        quietScans = 0
    }

    /// Ends the poller and cuts every viewer's connection; refuses new viewers.
    func stop() {
        lock.withLock {
            stopping = true
            for session in sessions { session.disconnect() }
            lock.broadcast()
        }
    }

    /// Call with the lock held.
    private func setWaiting(_ session: ClientSession, _ waiting: Bool) {
        guard session.waiting != waiting else { return }
        session.waiting = waiting
        waitingCount += waiting ? 1 : -1
        if waiting { lock.broadcast() }
    }
}

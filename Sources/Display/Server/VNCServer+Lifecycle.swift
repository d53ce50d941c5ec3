import LinuxSystem
extension VNCServer {
    /// Which threads are running, so `stop` can wait for every one of them.
    final class Lifecycle: @unchecked Sendable {
        private let lock = ConditionLock()
        // Guarded by `lock`:
        private var stopRequested = false
        private var serving = false
        private var finished = false
        private var viewerThreads = 0
        private var acceptor: NamedThread?

        /// False when the server stops or serves already (`run` then returns at once).
        func beginServing() -> Bool {
            lock.withLock {
                guard !stopRequested, !serving else { return false }
                serving = true
                return true
            }
        }

        /// Marks the accept loop and its teardown as done.
        func finish() {
            lock.withLock {
                finished = true
                lock.broadcast()
            }
        }

        /// Records the thread `start` makes, under the lock so a concurrent `stop` joins it.
        func startAcceptor(_ spawn: () throws(DisplayError) -> NamedThread) throws(DisplayError) {
            try lock.withLock { () throws(DisplayError) in
                guard acceptor == nil, !serving else { return }
                acceptor = try spawn()
            }
        }

        /// Counts a viewer thread about to start; false once stopping.
        func addViewerThread() -> Bool {
            lock.withLock {
                guard !stopRequested else { return false }
                viewerThreads += 1
                return true
            }
        }

        func removeViewerThread() {
            lock.withLock {
                viewerThreads -= 1
                lock.broadcast()
            }
        }

        func waitForViewerThreads() { lock.withLock { while viewerThreads > 0 { lock.wait() } } }

        func requestStop() { lock.withLock { stopRequested = true } }

        /// Joins the thread `start` made (once), then waits until the serving loop has finished.
        func joinAcceptorAndWait() {
            let thread: NamedThread? = lock.withLock {
                defer { acceptor = nil }
                return acceptor
            }
            thread?.join()
            lock.withLock { while serving && !finished { lock.wait() } }
        }
    }
}

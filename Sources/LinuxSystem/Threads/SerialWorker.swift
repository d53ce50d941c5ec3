/// A named thread that runs submitted jobs one after another, in order: work a hot thread hands
/// off (a chunk written to a cache) without the hand-off making a thread. The thread takes its
/// role where the worker is made, not where jobs are submitted, so jobs from a narrow role's
/// thread run under the role the worker was made for. It ends once the worker is dropped and
/// its queue is empty.
package final class SerialWorker: Sendable {
    private final class Shared: @unchecked Sendable {
        // Every variable is read and written only under `lock`.
        let lock = ConditionLock()
        var jobs: [@Sendable () -> Void] = []
        var busy = false
        var stopping = false

        func run() {
            while true {
                let job: (@Sendable () -> Void)? = lock.withLock {
                    busy = false
                    lock.broadcast()
                    while jobs.isEmpty && !stopping { lock.wait() }
                    guard !jobs.isEmpty else { return nil }
                    busy = true
                    return jobs.removeFirst()
                }
                guard let job else { return }
                job()
            }
        }
    }

    private let shared = Shared()

    package init(name: String, role: ThreadRole) throws(SystemError) {
        try NamedThread.spawnDetached(name: name, role: role) { [shared] in shared.run() }
    }

    deinit {
        shared.lock.withLock {
            shared.stopping = true
            shared.lock.broadcast()
        }
    }

    /// Queues `job`; it runs after every job queued before it.
    package func submit(_ job: @escaping @Sendable () -> Void) {
        shared.lock.withLock {
            shared.jobs.append(job)
            shared.lock.broadcast()
        }
    }

    /// Queues `job` unless `limit` jobs are already waiting; whether it was queued. For work that
    /// may be skipped (a cache write) when the worker falls behind, so its queue cannot grow without bound.
    package func submit(_ job: @escaping @Sendable () -> Void, ifFewerThan limit: Int) -> Bool {
        shared.lock.withLock {
            guard shared.jobs.count < limit else { return false }
            shared.jobs.append(job)
            shared.lock.broadcast()
            return true
        }
    }

    /// Waits until every job queued so far has run.
    package func waitUntilIdle() {
        shared.lock.withLock {
            while !shared.jobs.isEmpty || shared.busy { shared.lock.wait() }
        }
    }
}

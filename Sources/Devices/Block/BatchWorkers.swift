import LinuxSystem
import Synchronization

/// Threads that help the device I/O thread through one batch of independent requests (a disk's
/// reads and writes at queue depth > 1, copied between the page cache and guest memory):
/// `run(count:)` calls the work for every index below `count` on the helpers and on the calling
/// thread at once, and returns when all are done. Nothing runs between batches, so once a
/// device's `serve` returns no request is in flight, as snapshots and pauses expect.
final class BatchWorkers: Sendable {
    private let shared: BatchState
    private let threads: [NamedThread]

    /// `helpers` threads named `name`; `work(index)` does request `index` of the current batch.
    init(helpers: Int, name: String, work: @escaping @Sendable (Int) -> Void) throws(SystemError) {
        let shared = BatchState(work: work)
        var threads: [NamedThread] = []
        for _ in 0..<helpers { threads.append(try NamedThread.spawn(name: name, role: .deviceIO) { shared.help() }) }
        self.shared = shared
        self.threads = threads
    }

    deinit {
        shared.stop()
        for thread in threads { thread.join() }
    }

    /// Runs the work for indices `0..<count` across the helpers and this thread; returns once every one is done.
    func run(count: Int) { shared.run(count: count) }
}

/// What the helpers and the caller share: the batch's generation and size, a cursor that hands
/// out indices (the generation in its high half, so a helper that wakes late can never take an
/// index of the next batch with the previous batch's size), and the count of finished indices.
private final class BatchState: @unchecked Sendable {
    let work: @Sendable (Int) -> Void
    let lock = ConditionLock()
    /// Under `lock`: the current batch and whether the helpers should end.
    var generation: UInt64 = 0
    var size = 0
    var stopping = false
    let cursor = Atomic<UInt64>(0)
    let finished = Atomic<Int>(0)

    init(work: @escaping @Sendable (Int) -> Void) { self.work = work }

    func run(count: Int) {
        guard count > 0 else { return }
        let batch = lock.withLock { () -> UInt64 in
            generation += 1
            size = count
            finished.store(0, ordering: .relaxed)
            cursor.store(generation << 32, ordering: .releasing)
            lock.broadcast()
            return generation
        }
        drain(generation: batch, size: count)
        lock.withLock { while finished.load(ordering: .acquiring) < count { lock.wait() } }
    }

    /// A helper: waits for each new batch and takes indices of it until none is left.
    func help() {
        var seen: UInt64 = 0
        while true {
            let (batch, count, stop) = lock.withLock { () -> (UInt64, Int, Bool) in
                while generation == seen && !stopping { lock.wait() }
                return (generation, size, stopping)
            }
            if stop { return }
            seen = batch
            drain(generation: batch, size: count)
        }
    }

    /// Takes indices of batch `generation` (of `size` requests) until none is left, doing each.
    private func drain(generation: UInt64, size: Int) {
        while true {
            let current = cursor.load(ordering: .acquiring)
            guard current >> 32 == generation, Int(current & 0xffff_ffff) < size else { return }
            guard cursor.compareExchange(expected: current, desired: current + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            work(Int(current & 0xffff_ffff))
            if finished.add(1, ordering: .acquiringAndReleasing).newValue == size {
                lock.withLock { lock.broadcast() }
            }
        }
    }

    func stop() {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }
}

import Glibc

/// A pthread mutex with one condition variable: threads that must sleep until something
/// changes (the change poller with no viewer waiting, `stop` waiting for threads to end).
///
/// `@unchecked Sendable`: the pointers never change, and pthread objects are made to be shared.
@safe
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        // SAFETY: allocated once, initialised here, destroyed and freed in deinit.
        unsafe mutex = .allocate(capacity: 1)
        unsafe condition = .allocate(capacity: 1)
        _ = unsafe pthread_mutex_init(mutex, nil)
        // Timed waits measure on the monotonic clock, so a clock change cannot stretch them.
        var attributes = pthread_condattr_t()
        // SAFETY: the attributes are a local, initialised, used and destroyed here.
        _ = unsafe pthread_condattr_init(&attributes)
        _ = unsafe pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        _ = unsafe pthread_cond_init(condition, &attributes)
        _ = unsafe pthread_condattr_destroy(&attributes)
    }

    deinit {
        _ = unsafe pthread_cond_destroy(condition)
        _ = unsafe pthread_mutex_destroy(mutex)
        unsafe condition.deallocate()
        unsafe mutex.deallocate()
    }

    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        _ = unsafe pthread_mutex_lock(mutex)
        defer { _ = unsafe pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Sleeps until woken; call with the lock held (inside `withLock`).
    func wait() { _ = unsafe pthread_cond_wait(condition, mutex) }

    /// Sleeps until woken or `milliseconds` pass; call with the lock held.
    func wait(milliseconds: Int) {
        var deadline = timespec()
        // SAFETY: clock_gettime fills a local.
        _ = unsafe clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = deadline.tv_nsec + milliseconds % 1000 * 1_000_000
        deadline.tv_sec += milliseconds / 1000 + nanoseconds / 1_000_000_000
        deadline.tv_nsec = nanoseconds % 1_000_000_000
        // SAFETY: the deadline is a local; the mutex is held by the caller.
        _ = unsafe pthread_cond_timedwait(condition, mutex, &deadline)
    }

    /// Wakes every waiter.
    func broadcast() { _ = unsafe pthread_cond_broadcast(condition) }
}

import Glibc

/// A pthread mutex with one condition variable, for threads that must sleep until something
/// changes: parked vCPUs until resumed, a pauser until every vCPU has parked, a poller with
/// no viewer waiting, `stop` waiting for threads to end. Timed waits run on the monotonic
/// clock, so a change of the wall clock cannot stretch them.
///
/// `@unchecked Sendable`: the pointers never change, and pthread objects are made to be shared.
@safe
package final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    package init() {
        // SAFETY: allocated once, initialised here, destroyed and freed in deinit.
        unsafe mutex = .allocate(capacity: 1)
        unsafe condition = .allocate(capacity: 1)
        _ = unsafe pthread_mutex_init(mutex, nil)
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

    /// Runs `body` with the lock held.
    package func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        _ = unsafe pthread_mutex_lock(mutex)
        defer { _ = unsafe pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Sleeps until woken; call with the lock held (inside `withLock`).
    package func wait() { _ = unsafe pthread_cond_wait(condition, mutex) }

    /// Sleeps until woken or `milliseconds` pass; call with the lock held.
    package func wait(milliseconds: Int) {
        var deadline = MonotonicClock.timespec(after: milliseconds)
        // SAFETY: the deadline is a local; the mutex is held by the caller.
        _ = unsafe pthread_cond_timedwait(condition, mutex, &deadline)
    }

    /// Wakes every waiter; call with the lock held.
    package func broadcast() { _ = unsafe pthread_cond_broadcast(condition) }
}

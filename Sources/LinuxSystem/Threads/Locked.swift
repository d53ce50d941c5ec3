import Glibc

/// A value reached only with a pthread mutex held: Engram's one lock for shared state, shaped
/// like the standard library's `Mutex` (non-copyable, `withLock` with `sending` in and out).
///
/// Why not `Synchronization.Mutex`: its lock is a futex inside a module the toolchain builds
/// without ThreadSanitizer, so TSan cannot see it and reported every access it guards as a race.
/// TSan intercepts pthread mutexes, and an uncontended pthread lock costs the same one atomic
/// exchange each way (glibc's fast path), so the same lock serves normal and sanitizer builds.
@safe
package struct Locked<Value: ~Copyable>: ~Copyable {
    // Heap cells: a pthread mutex must not move once initialised, and a non-copyable struct may.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    package init(_ initial: consuming sending Value) {
        // SAFETY: both cells are allocated and initialised here, and destroyed only in deinit.
        unsafe mutex = .allocate(capacity: 1)
        _ = unsafe pthread_mutex_init(mutex, nil)
        unsafe value = .allocate(capacity: 1)
        unsafe value.initialize(to: initial)
    }

    deinit {
        // SAFETY: no borrow outlives the struct, so nothing holds the lock or the value now.
        unsafe value.deinitialize(count: 1)
        unsafe value.deallocate()
        _ = unsafe pthread_mutex_destroy(mutex)
        unsafe mutex.deallocate()
    }

    /// Runs `body` with the lock held and the value lent to it.
    @inline(__always)
    package borrowing func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        _ = unsafe pthread_mutex_lock(mutex)
        defer { _ = unsafe pthread_mutex_unlock(mutex) }
        // SAFETY: the lock is held, so this is the only access to the value until it returns.
        return try unsafe body(&value.pointee)
    }
}

// SAFETY: the value is reached only under the lock, and it arrives and leaves `sending`.
extension Locked: @unchecked Sendable where Value: ~Copyable {}

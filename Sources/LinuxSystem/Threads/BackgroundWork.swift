import Dispatch

/// Work started at once on another thread, whose result is waited for later: slot
/// registration beside state decoding in a restore, a snapshot read beside VM creation.
/// `result()` waits, then returns or rethrows; later calls return the same at once.
///
/// On libdispatch's pool: measured against a thread per job (same sources otherwise, 15
/// interleaved restores each), the pool's kept threads restore lazily 3 ms sooner and map
/// equally from spawn; a thread made and ended per job pays its stack's set-up and release.
package final class BackgroundWork<Value: Sendable, Failure: Error>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Locked<Result<Value, Failure>?>(nil)

    /// How the work's thread ranks beside the caller's on a busy host. `high` (libdispatch's
    /// user-initiated class, nice -2 on Linux): work the caller soon waits for. `low` (utility):
    /// work the caller waits for last, which must not take a core from it meanwhile (on 2 cores a
    /// standby restore's CRC-table check at `high` held up the restore itself by up to 1 ms).
    package enum Priority: Sendable { case high, low }

    package init(priority: Priority = .high, _ work: @escaping @Sendable () throws(Failure) -> Value) {
        DispatchQueue.global(qos: priority == .high ? .userInitiated : .utility).async { [self] in
            let result: Result<Value, Failure>
            do throws(Failure) { result = .success(try work()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
    }

    /// Waits for the work to finish.
    package func result() throws(Failure) -> Value {
        done.wait()
        done.signal()  // later calls return at once
        return try outcome.withLock { $0! }.get()
    }
}

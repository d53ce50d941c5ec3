import Dispatch
import Synchronization

/// Work started at once on another thread, whose result is waited for later: slot
/// registration beside state decoding in a restore, a snapshot read beside VM creation.
/// `result()` waits, then returns or rethrows; later calls return the same at once.
///
/// On libdispatch's pool: measured against a thread per job (same sources otherwise, 15
/// interleaved restores each), the pool's kept threads restore lazily 3 ms sooner and map
/// equally from spawn; a thread made and ended per job pays its stack's set-up and release.
package final class BackgroundWork<Value: Sendable, Failure: Error>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Value, Failure>?>(nil)

    package init(_ work: @escaping @Sendable () throws(Failure) -> Value) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
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

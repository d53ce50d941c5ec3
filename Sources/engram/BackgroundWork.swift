import Dispatch
import Synchronization

/// Runs `work` on another thread at once; `result()` waits for it and returns or rethrows.
final class BackgroundWork<Value: Sendable, Failure: Error>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let outcome = Mutex<Result<Value, Failure>?>(nil)

    init(_ work: @escaping @Sendable () throws(Failure) -> Value) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let result: Result<Value, Failure>
            do throws(Failure) { result = .success(try work()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
            done.signal()
        }
    }

    /// Waits for the work to finish.
    func result() throws(Failure) -> Value {
        done.wait()
        done.signal()  // later calls return at once
        return try outcome.withLock { $0! }.get()
    }
}

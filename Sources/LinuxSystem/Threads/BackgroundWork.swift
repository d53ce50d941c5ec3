/// Work started at once on another thread, whose result is waited for later: slot
/// registration beside state decoding in a restore, a snapshot read beside VM creation.
/// `result()` waits, then returns or rethrows; later calls return the same at once.
///
/// Each piece of work gets a thread of its own rather than a Dispatch queue: the first use of
/// libdispatch's pool costs milliseconds (its manager thread, workqueue set-up), and these jobs
/// sit on a restore's critical path, where that start-up would be paid in full.
package final class BackgroundWork<Value: Sendable, Failure: Error>: Sendable {
    private let state: ConditionLock
    private let box: OutcomeBox<Value, Failure>

    package init(_ work: @escaping @Sendable () throws(Failure) -> Value) {
        let state = ConditionLock(), box = OutcomeBox<Value, Failure>()
        self.state = state
        self.box = box
        let run: @Sendable () -> Void = {
            let result: Result<Value, Failure>
            do throws(Failure) { result = .success(try work()) } catch { result = .failure(error) }
            state.withLock {
                box.outcome = result
                state.broadcast()
            }
        }
        // Without a thread (the process is out of them) the work runs here, now.
        do { try NamedThread.spawnDetached(name: "background", run) } catch { run() }
    }

    /// Waits for the work to finish.
    package func result() throws(Failure) -> Value {
        let outcome = state.withLock { () -> Result<Value, Failure> in
            while box.outcome == nil { state.wait() }
            return box.outcome!
        }
        return try outcome.get()
    }
}

/// The work's result, written once under the lock and read under it.
private final class OutcomeBox<Value: Sendable, Failure: Error>: @unchecked Sendable {
    var outcome: Result<Value, Failure>?
}

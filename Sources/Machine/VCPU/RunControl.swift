import LinuxSystem

/// The machine's run state shared by vCPU threads and controllers: running, paused or stopping.
///
/// A condition lock, because parked vCPU threads must sleep until
/// resumed and a pauser must sleep until every vCPU has parked. Held only briefly.
///
/// `@unchecked Sendable`: every variable is read and written only under `lock`.
final class RunControl: @unchecked Sendable {
    typealias State = MachineRunState

    private let lock = ConditionLock()
    private var state = State.running
    private var parkedCount = 0
    private var outcome: MachineOutcome?

    private func withLock<R>(_ body: () -> R) -> R { lock.withLock(body) }
    private func wait() { lock.wait() }
    private func broadcast() { lock.broadcast() }

    var currentState: State { withLock { state } }

    /// Called by a vCPU thread whose KVM_RUN was interrupted: parks while paused.
    /// Returns false once the machine is stopping. `rearm` runs under the lock when it may run again.
    func parkIfPaused(rearm: () -> Void) -> Bool {
        withLock {
            if state == .paused {
                // One broadcast on arrival tells the pauser; broadcasting on every wake-up
                // would have parked vCPUs wake each other in turn and spin while paused.
                parkedCount += 1
                broadcast()
                while state == .paused { wait() }
                parkedCount -= 1
            }
            if state == .running { rearm() }
            return state == .running
        }
    }

    /// Moves to paused; `kick` runs under the lock (set immediate_exit), `signal` after it; returns once `vcpuCount` vCPUs parked.
    func pause(vcpuCount: Int, kick: () -> Void, signal: () -> Void) -> Bool {
        let changedState: Bool = withLock {
            guard state == .running else { return false }
            state = .paused
            kick()
            return true
        }
        guard changedState else { return false }
        signal()
        return withLock {
            while state == .paused && parkedCount < vcpuCount { wait() }
            return state == .paused
        }
    }

    /// Marks a machine whose vCPUs have not started yet as paused: they park on their first
    /// (immediately interrupted) run. False if it is no longer running.
    func beginPaused(kick: () -> Void) -> Bool {
        withLock {
            guard state == .running else { return false }
            state = .paused
            kick()
            return true
        }
    }

    /// Moves from paused to running and wakes the parked vCPUs; false when not paused.
    func resume() -> Bool {
        withLock {
            guard state == .paused else { return false }
            state = .running
            broadcast()
            return true
        }
    }

    /// Records how the machine ended (the first report wins) and wakes everyone.
    func finish(_ result: MachineOutcome, kick: () -> Void) {
        withLock {
            if outcome == nil { outcome = result }
            state = .stopping
            kick()
            broadcast()
        }
    }

    /// Blocks until the machine has ended.
    func waitForOutcome() -> MachineOutcome {
        withLock {
            while outcome == nil { wait() }
            return outcome!
        }
    }
}

import LinuxSystem
import Machine

/// Between the control API's worker (which builds the restored VM) and the main thread (which
/// runs it): the VM goes one way, whether its vCPUs started comes back; a signal or a shutdown
/// request ends the wait instead.
///
/// `@unchecked Sendable`: every variable is read and written only under `lock`.
final class StandbyHandoff: @unchecked Sendable {
    enum Request {
        case restore(RestoredVM, arrived: ContinuousClock.Instant)
        case end
    }

    private enum Phase {
        case waiting
        case handed(RestoredVM, arrived: ContinuousClock.Instant)
        case running(Machine)
        case failed(VMMError)
        case ending
    }

    private let lock = ConditionLock()
    private var phase = Phase.waiting
    private var startedAfter: Duration?

    /// Main thread: blocks until a restored VM is handed over or the standby VMM is to end.
    func waitForRequest() -> Request {
        lock.withLock {
            while true {
                switch phase {
                case .handed(let vm, let arrived): return .restore(vm, arrived: arrived)
                case .ending: return .end
                default: lock.wait()
                }
            }
        }
    }

    /// Worker: hands `vm` to the main thread and waits until its vCPUs run; their time since
    /// `arrived`, or why they could not start. Nil if the standby VMM is ending instead.
    func handOver(_ vm: RestoredVM, arrived: ContinuousClock.Instant) -> Result<Duration, VMMError>? {
        lock.withLock {
            guard case .waiting = phase else { return nil }
            phase = .handed(vm, arrived: arrived)
            lock.broadcast()
            while true {
                switch phase {
                case .running: return startedAfter.map { .success($0) } ?? .failure(.failed("the VM did not start"))
                case .failed(let error): return .failure(error)
                default: lock.wait()
                }
            }
        }
    }

    /// Main thread: the vCPUs run.
    func started(after duration: Duration) {
        lock.withLock {
            guard case .handed(let vm, _) = phase else { return }
            startedAfter = duration
            phase = .running(vm.machine)
            lock.broadcast()
        }
    }

    /// Main thread: the VM could not start.
    func failedToStart(_ error: VMMError) {
        lock.withLock {
            guard case .handed = phase else { return }
            phase = .failed(error)
            lock.broadcast()
        }
    }

    /// A shutdown request to the unused standby VMM: ends the wait. False once it has a VM.
    func end() -> Bool {
        lock.withLock {
            guard case .waiting = phase else { return false }
            phase = .ending
            lock.broadcast()
            return true
        }
    }

    /// SIGINT, SIGTERM or SIGHUP: ends the unused standby VMM, or the VM it became.
    func terminate(signal: Int32) {
        let machine: Machine? = lock.withLock {
            switch phase {
            case .waiting:
                phase = .ending
                lock.broadcast()
                return nil
            case .handed(let vm, _): return vm.machine
            case .running(let machine): return machine
            case .failed, .ending: return nil
            }
        }
        machine?.finish(.terminatedBySignal(signal))
    }
}

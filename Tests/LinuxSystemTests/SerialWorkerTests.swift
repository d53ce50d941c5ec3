import Foundation
import LinuxSystem
import Testing

/// A worker runs its jobs in order on its own thread; a bounded submit refuses a job once the
/// queue holds as many as allowed, and takes jobs again once the worker has caught up.
@Suite struct SerialWorkerTests {
    @Test func jobsRunInOrderAndABoundedSubmitRefusesPastItsLimit() throws {
        let worker = try SerialWorker(name: "worker-test", role: .control)
        let gate = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let order = Locked<[Int]>([])
        // The first job holds the worker, so the next ones queue behind it.
        worker.submit {
            started.signal()
            gate.wait()
        }
        #expect(started.wait(timeout: .now() + 30) == .success)
        let accepted = (1...5).map { number in worker.submit({ order.withLock { $0.append(number) } }, ifFewerThan: 3) }
        #expect(accepted == [true, true, true, false, false])
        gate.signal()
        worker.waitUntilIdle()
        let ran = order.withLock { $0 }
        #expect(ran == [1, 2, 3])
        let again = worker.submit({ order.withLock { $0.append(6) } }, ifFewerThan: 1)
        #expect(again)
        worker.waitUntilIdle()
        let all = order.withLock { $0 }
        #expect(all == [1, 2, 3, 6])
    }
}

import Foundation
import LinuxSystem
import Synchronization
import Testing

/// Threads started ahead of their work: each runs the one body it is given, on itself, and a
/// cancelled or already used one refuses another.
@Suite struct ReservedThreadTests {
    @Test func aReservedThreadRunsTheOneBodyItIsGivenOnItsOwnThread() throws {
        let reserved = try ReservedThread(name: "reserve-test", role: .control)
        let ran = Atomic<Int>(0)
        let thread = Locked<CInt>(0)
        let done = DispatchSemaphore(value: 0)
        let accepted = reserved.run {
            ran.add(1, ordering: .relaxed)
            thread.withLock { $0 = NamedThread.currentThreadID }
            done.signal()
        }
        #expect(accepted)
        #expect(done.wait(timeout: .now() + 30) == .success)
        let runs = ran.load(ordering: .relaxed)
        #expect(runs == 1)
        let runner = thread.withLock { $0 }
        #expect(runner != NamedThread.currentThreadID)
        let again = reserved.run { ran.add(1, ordering: .relaxed) }
        #expect(!again, "a reserve runs one body")
        usleep(20_000)
        let runsAfter = ran.load(ordering: .relaxed)
        #expect(runsAfter == 1)
    }

    @Test func aCancelledReserveRunsNothing() throws {
        let reserved = try ReservedThread(name: "reserve-test", role: .control)
        reserved.cancel()
        let ran = Atomic<Bool>(false)
        let accepted = reserved.run { ran.store(true, ordering: .relaxed) }
        #expect(!accepted)
        usleep(20_000)
        let didRun = ran.load(ordering: .relaxed)
        #expect(!didRun)
    }
}

import Testing
@testable import LinuxSystem

/// Child processes and the clocks.
@Suite struct ProcessTests {
    @Test func runCollectsOutputAndStatus() throws {
        let (termination, output) = try Subprocess.run("/bin/sh", arguments: ["-c", "echo out; echo err >&2; exit 3"], timeoutMilliseconds: 5000)
        #expect(termination == .exited(3))
        #expect(String(decoding: output, as: UTF8.self) == "out\nerr\n")
    }

    @Test func aChildPastItsDeadlineIsKilled() throws {
        let (termination, _) = try Subprocess.run("/bin/sleep", arguments: ["10"], timeoutMilliseconds: 100)
        #expect(termination == .timedOut)
    }

    @Test func aMissingBinaryIsNamed() {
        // posix_spawn reports a missing file either at once or as exit status 127 from the child.
        do {
            let (termination, _) = try Subprocess.run("/nonexistent/engram", arguments: [], timeoutMilliseconds: 1000)
            #expect(termination == .exited(127))
        } catch {
            #expect(error.subject == "/nonexistent/engram")
        }
    }

    @Test func monotonicTimeAdvancesAndDurationsConvert() {
        let first = MonotonicClock.nanoseconds()
        let second = MonotonicClock.nanoseconds()
        #expect(second >= first)
        #expect(Duration.milliseconds(1500).inSeconds == 1.5)
        #expect(Duration.microseconds(250).inMilliseconds == 0.25)
        #expect(WallClock.nanosecondsSinceEpoch() > 1_700_000_000 * 1_000_000_000)
    }

    @Test func conditionLockTimedWaitReturns() {
        let lock = ConditionLock()
        let start = MonotonicClock.nanoseconds()
        lock.withLock { lock.wait(milliseconds: 20) }
        #expect(MonotonicClock.nanoseconds() - start >= 10_000_000)
    }
}

import Dispatch
import Foundation
import LinuxSystem
import Machine
import Testing
@testable import VMM

/// The main thread's exec service once the machine has ended: an update that asks for its exec
/// then is answered at once (it gives up) instead of waiting forever for a main thread that
/// has returned, which also held up the control server's stop and the process's exit.
@Suite struct MainThreadExecTests {
    @Test func anExecAskedForAfterTheMachineEndedIsAnsweredAtOnce() {
        let service = MainThreadExec()
        #expect(service.waitForOutcome { .shutdownRequested } == .shutdownRequested)
        let answered = DispatchSemaphore(value: 0)
        let reason = Locked("")
        let asker = Thread {
            let text = service.exec("/nonexistent-engram", arguments: [], keeping: [])
            reason.withLock { $0 = text }
            answered.signal()
        }
        asker.start()
        #expect(answered.wait(timeout: .now() + 30) == .success, "the exec request was never answered")
        #expect(reason.withLock { $0 } == MainThreadExec.endedReason)
    }
}

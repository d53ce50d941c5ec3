import Machine
import Testing

@Suite struct MachineOutcomeTests {
    @Test func guestAndUserEndingsExitZero() {
        for outcome: MachineOutcome in [.poweredOff, .reset, .shutdownRequested, .quitFromConsole, .terminatedBySignal(15)] {
            #expect(outcome.exitStatus == 0, "\(outcome)")
        }
    }

    @Test func failuresExitNonZeroWithTheRIP() {
        let failures: [MachineOutcome] = [
            .internalError(vcpu: 0, suberror: 1, rip: 0xffff_ffff_8132_ae50),
            .tripleFault(vcpu: 1, rip: 0x10_0000),
            .entryFailure(vcpu: 0, reason: 7, rip: 0x1000),
            .unhandledExit(vcpu: 0, reason: 99, rip: 0x2000),
        ]
        for outcome in failures {
            #expect(outcome.exitStatus == 1)
            #expect(outcome.message.contains("at RIP 0x"), "\(outcome.message)")
            #expect(!outcome.message.contains("\n"))
        }
        #expect(failures[0].message.contains("emulation failure") && failures[0].message.contains("0xffffffff8132ae50"))
        #expect(failures[1].message.contains("triple-faulted on vCPU 1"))
    }
}

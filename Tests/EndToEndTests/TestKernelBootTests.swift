import Foundation
import Testing
import TestSupport

/// The test kernel boots under engram: CPUs, timer, console input, power-off.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct TestKernelBootTests {
    @Test func bootsToReadyWithOneCPU() throws {
        let (process, ready) = try TestKernel.boot(cpus: 1)
        defer { process.stop() }
        #expect(TestKernel.field("cpus", in: ready) == "1")
        #expect(process.errorText.contains("region ram: 256 MiB, memfd, guest 0x0-0xfffffff"))
    }

    @Test func startsEveryCPUAndEachRunsWork() throws {
        let (process, ready) = try TestKernel.boot(cpus: 2)
        defer { process.stop() }
        #expect(TestKernel.field("cpus", in: ready) == "2")
        let offset = process.consoleText.utf8.count
        try process.command("cpus", expect: "CPUS online=2")
        let output = String(process.consoleText.utf8.dropFirst(offset)) ?? ""
        #expect(output.contains("CPU 0 OK"))
        #expect(output.contains("CPU 1 OK"))
    }

    @Test func timerTicksAndTypedCommandsRun() throws {
        let (process, _) = try TestKernel.boot()
        defer { process.stop() }
        let first = try TestKernel.ticks(process)
        Thread.sleep(forTimeInterval: 0.3)
        let second = try TestKernel.ticks(process)
        #expect(first >= 0)
        #expect(second > first)
        let fill = try process.command("fill 16 42", expect: "FILL ")
        let digest = try process.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: fill) == TestKernel.field("digest", in: digest))
        #expect(TestKernel.field("mib", in: fill) == "16")
    }

    @Test func commandLineCommandsRunAfterReady() throws {
        let (process, _) = try TestKernel.boot(cmdline: "console=ttyS0 -- fill 8 7; digest")
        defer { process.stop() }
        let fill = try process.waitForLine(containing: "FILL ")
        let digest = try process.waitForLine(containing: "DIGEST ")
        #expect(TestKernel.field("digest", in: fill) != nil)
        #expect(TestKernel.field("digest", in: fill) == TestKernel.field("digest", in: digest))
    }

    @Test func powerOffEndsTheVMMWithStatusZero() throws {
        let (process, _) = try TestKernel.boot(cpus: 2)
        process.send("poweroff\r")
        #expect(try process.waitForExit() == 0)
        #expect(process.consoleText.contains("POWEROFF"))
        #expect(process.errorText.contains("the guest powered off"))
    }

    @Test func consoleLogGetsACopyOfTheConsole() throws {
        let directory = TemporaryDirectory()
        let log = directory.path("console.log")
        let (process, _) = try TestKernel.boot(cmdline: "console=ttyS0 -- poweroff", extra: ["--console-log", log])
        #expect(try process.waitForExit() == 0)
        let text = try String(contentsOfFile: log, encoding: .utf8)
        #expect(text.contains("READY"))
        #expect(text.contains("POWEROFF"))
        let mode = try FileManager.default.attributesOfItem(atPath: log)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

import Foundation
import Testing
import TestSupport

/// The console as a person uses it: a real terminal (pty) in raw mode, typed keys, Ctrl-A x.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"))
struct InteractiveConsoleTests {
    /// Drives engram on a pty with pexpect; prints PASS lines the test checks.
    static let script = """
        import pexpect, sys
        engram, kernel = sys.argv[1], sys.argv[2]
        child = pexpect.spawn(engram, ["run", "--kernel", kernel, "--memory", "128M"], timeout=60)
        child.expect("READY"); print("PASS ready")
        child.expect("> ")
        child.send("tic")                    # keys arrive one by one and are echoed
        child.send("ks\\r")
        child.expect(r"TICKS (\\d+)"); print("PASS ticks", child.match.group(1).decode())
        child.send("\\x01x")                 # Ctrl-A x quits, as in QEMU
        child.expect(pexpect.EOF)
        child.close()
        print("PASS exit", child.exitstatus)
        """

    @Test func typedKeysReachTheGuestAndCtrlAXQuits() throws {
        let pipe = Pipe()
        let runner = Process()
        runner.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        runner.arguments = ["python3", "-c", Self.script, ProjectPaths.engram, ProjectPaths.testKernel]
        runner.standardOutput = pipe
        runner.standardError = pipe
        try runner.run()
        runner.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(output.contains("PASS ready"), "\(output)")
        #expect(output.contains("PASS ticks"), "\(output)")
        #expect(output.contains("PASS exit 0"), "\(output)")
    }
}

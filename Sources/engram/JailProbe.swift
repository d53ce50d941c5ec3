import Glibc
import LinuxSystem
import SystemPackage
import VMM

/// The tests' question to a jailed VMM, asked at start through ENGRAM_TEST_JAIL_PROBE
/// ("read=PATH,signal=PID,hugepages=N,..."): may this process open PATH, signal PID, have N huge
/// pages? The answer is one line on standard error, "jail probe: read PATH: allowed; signal PID:
/// No such process; hugepages 1: Cannot allocate memory".
enum JailProbe {
    static let variable = "ENGRAM_TEST_JAIL_PROBE"

    static func answerIfAsked() {
        // The jailer passes the question on; only the VMM it starts answers.
        guard CommandLine.arguments.dropFirst().first != "jail", let probe = ProcessEnvironment.value(variable) else { return }
        var answers: [String] = []
        for item in probe.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "read":
                do {
                    _ = try OwnedFileDescriptor.open(parts[1], .readOnly)
                    answers.append("read \(parts[1]): allowed")
                } catch {
                    answers.append("read \(parts[1]): \(error.errno)")
                }
            case "hugepages":
                let refusal = HugePageProbe.tryAllocate(pages: UInt32(parts[1]) ?? 1)
                answers.append("hugepages \(parts[1]): \(refusal.map(\.description) ?? "allowed")")
            case "signal":
                let allowed = kill(pid_t(parts[1]) ?? -1, 0) == 0
                answers.append("signal \(parts[1]): \(allowed ? "allowed" : Errno(rawValue: errno).description)")
            default:
                continue
            }
        }
        Diagnostics.note("jail probe: " + answers.joined(separator: "; "))
    }
}

import Glibc
import VMM

/// The tests' question to a jailed VMM, asked at start through ENGRAM_TEST_JAIL_PROBE
/// ("read=PATH,signal=PID,..."): may this process open PATH, may it signal PID? The answer is
/// one line on standard error, "jail probe: read PATH: allowed; signal PID: No such process".
enum JailProbe {
    static let variable = "ENGRAM_TEST_JAIL_PROBE"

    static func answerIfAsked() {
        // The jailer passes the question on; only the VMM it starts answers.
        guard CommandLine.arguments.dropFirst().first != "jail", let probe = unsafe getenv(variable).map({ unsafe String(cString: $0) }) else { return }
        var answers: [String] = []
        for item in probe.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "read":
                let fd = unsafe open(parts[1], O_RDONLY | O_CLOEXEC)
                answers.append("read \(parts[1]): \(fd >= 0 ? "allowed" : unsafe String(cString: strerror(errno)))")
                if fd >= 0 { close(fd) }
            case "signal":
                let allowed = kill(pid_t(parts[1]) ?? -1, 0) == 0
                answers.append("signal \(parts[1]): \(allowed ? "allowed" : unsafe String(cString: strerror(errno)))")
            default:
                continue
            }
        }
        Diagnostics.note("jail probe: " + answers.joined(separator: "; "))
    }
}

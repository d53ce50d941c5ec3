import CLinux
import Glibc
import SystemPackage

/// A classic-BPF seccomp filter that allows a list of system calls and traps every other one
/// (or, in audit mode, logs it and lets it run). Calls are compared in list order, so the
/// frequent ones (ioctl for KVM_RUN, futex) go first; an ioctl may be limited to some requests.
package struct SeccompProgram: Sendable {
    /// What happens to a call the list does not hold.
    package enum Denial: Sendable {
        /// SIGSYS, carrying `role` for the report (`SeccompReport`).
        case trap(role: UInt16)
        /// The kernel logs the call (audit type 1326, with the thread's name) and lets it run:
        /// how a new code path's calls are found.
        case log
    }

    package let instructions: [sock_filter]

    private static let loadWord: UInt16 = 0x00 | 0x00 | 0x20  // BPF_LD | BPF_W | BPF_ABS
    private static let jumpIfEqual: UInt16 = 0x05 | 0x10  // BPF_JMP | BPF_JEQ | BPF_K
    private static let jumpIfAtLeast: UInt16 = 0x05 | 0x30  // BPF_JMP | BPF_JGE | BPF_K
    private static let returnValue: UInt16 = 0x06  // BPF_RET | BPF_K
    private static let architectureOffset: UInt32 = 4  // seccomp_data.arch
    private static let numberOffset: UInt32 = 0  // seccomp_data.nr
    private static let x32Bit: UInt32 = 0x4000_0000  // x32 calls share numbers; refused outright

    /// A call the filter allows: always, or (for ioctl) only with one of `requests`.
    package struct Allowance: Sendable {
        package let call: SystemCall
        /// nil: any arguments. Otherwise the ioctl requests allowed (the call's second argument).
        package let requests: [IoctlRequest]?

        package init(_ call: SystemCall, requests: [IoctlRequest]? = nil) {
            self.call = call
            self.requests = requests
        }
    }

    private static let argumentOffset: UInt32 = 16  // seccomp_data.args[0]; each argument is 8 bytes, low word first

    package init(allowing calls: [SystemCall], otherwise denial: Denial) {
        self.init(allowing: calls.map { Allowance($0) }, otherwise: denial)
    }

    /// Allows `allowances` in order: a call listed twice keeps its first place, and is allowed
    /// with any arguments if either listing says so, else with the requests of both.
    package init(allowing allowances: [Allowance], otherwise denial: Denial) {
        let deny: UInt32
        switch denial {
        case .trap(let role): deny = UInt32(SECCOMP_RET_TRAP) | UInt32(role)
        case .log: deny = UInt32(SECCOMP_RET_LOG)
        }
        var order: [SystemCall] = []
        var requests: [SystemCall: [IoctlRequest]?] = [:]
        for allowance in allowances {
            guard let known = requests[allowance.call] else {
                order.append(allowance.call)
                requests[allowance.call] = allowance.requests
                continue
            }
            if let known, let more = allowance.requests {
                requests[allowance.call] = known + more.filter { !known.contains($0) }
            } else {
                requests[allowance.call] = .some(nil)
            }
        }
        var program: [sock_filter] = [
            sock_filter(code: Self.loadWord, jt: 0, jf: 0, k: Self.architectureOffset),
            sock_filter(code: Self.jumpIfEqual, jt: 1, jf: 0, k: CLINUX_AUDIT_ARCH_X86_64),
            sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: UInt32(SECCOMP_RET_KILL_PROCESS)),
            sock_filter(code: Self.loadWord, jt: 0, jf: 0, k: Self.numberOffset),
            sock_filter(code: Self.jumpIfAtLeast, jt: 0, jf: 1, k: Self.x32Bit),
            sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: deny),
        ]
        let allow = sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: UInt32(SECCOMP_RET_ALLOW))
        for call in order {
            let number = UInt32(bitPattern: call.rawValue)
            guard let allowed = requests[call] ?? nil else {
                program.append(sock_filter(code: Self.jumpIfEqual, jt: 0, jf: 1, k: number))
                program.append(allow)
                continue
            }
            // The call, then its second argument's low word against each request: a match jumps
            // to ALLOW, none falls to the denial. A jump spans at most 255 instructions.
            precondition(allowed.count <= 250, "\(allowed.count) requests for one call")
            let count = UInt8(allowed.count)
            program.append(sock_filter(code: Self.jumpIfEqual, jt: 0, jf: count + 3, k: number))
            program.append(sock_filter(code: Self.loadWord, jt: 0, jf: 0, k: Self.argumentOffset + 8))
            for (index, request) in allowed.enumerated() {
                program.append(sock_filter(code: Self.jumpIfEqual, jt: count - UInt8(index), jf: 0, k: request.number))
            }
            program.append(sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: deny))
            program.append(allow)
        }
        program.append(sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: deny))
        instructions = program
    }

    /// Installs the filter on the calling thread. Filters add up: a thread runs a call only if
    /// every filter it holds (its own and those inherited from the thread that made it) allows it.
    package func installOnCurrentThread() throws(SystemError) {
        // SAFETY: the kernel copies the program during the call.
        let result = unsafe instructions.withUnsafeBufferPointer { unsafe clinux_seccomp_install($0.baseAddress!, UInt16($0.count)) }
        guard result == 0 else { throw SystemError("seccomp", on: "this thread's system-call filter", Errno(rawValue: errno)) }
    }
}

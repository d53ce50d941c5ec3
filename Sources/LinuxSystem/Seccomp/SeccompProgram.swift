import CLinux
import Glibc
import SystemPackage

/// A classic-BPF seccomp filter that allows a list of system calls and traps every other one
/// (or, in audit mode, logs it and lets it run). Calls are compared in list order, so the
/// frequent ones (ioctl for KVM_RUN, futex) go first.
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

    package init(allowing calls: [SystemCall], otherwise denial: Denial) {
        let deny: UInt32
        switch denial {
        case .trap(let role): deny = UInt32(SECCOMP_RET_TRAP) | UInt32(role)
        case .log: deny = UInt32(SECCOMP_RET_LOG)
        }
        var seen = Set<SystemCall>()
        let unique = calls.filter { seen.insert($0).inserted }
        var program: [sock_filter] = [
            sock_filter(code: Self.loadWord, jt: 0, jf: 0, k: Self.architectureOffset),
            sock_filter(code: Self.jumpIfEqual, jt: 1, jf: 0, k: CLINUX_AUDIT_ARCH_X86_64),
            sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: UInt32(SECCOMP_RET_KILL_PROCESS)),
            sock_filter(code: Self.loadWord, jt: 0, jf: 0, k: Self.numberOffset),
            sock_filter(code: Self.jumpIfAtLeast, jt: 0, jf: 1, k: Self.x32Bit),
            sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: deny),
        ]
        for call in unique {
            program.append(sock_filter(code: Self.jumpIfEqual, jt: 0, jf: 1, k: UInt32(bitPattern: call.rawValue)))
            program.append(sock_filter(code: Self.returnValue, jt: 0, jf: 0, k: UInt32(SECCOMP_RET_ALLOW)))
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

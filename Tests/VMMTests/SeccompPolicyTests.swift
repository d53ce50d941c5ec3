import Foundation
import LinuxSystem
import Testing
import TestSupport
@testable import VMM

@Suite struct SeccompPolicyTests {
    @Test func theSecurityDocumentListsTheFiltersAsBuilt() throws {
        let path = ProjectPaths.root.appendingPathComponent("docs/SECURITY.md").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let begin = "<!-- seccomp-filters:begin (generated from SeccompPolicy; ENGRAM_UPDATE_DOCS=1 swift test --filter SeccompPolicyTests rewrites it) -->\n"
        let end = "\n<!-- seccomp-filters:end -->"
        let start = try #require(text.range(of: begin), "docs/SECURITY.md lacks the seccomp-filters markers")
        let stop = try #require(text.range(of: end, range: start.upperBound..<text.endIndex))
        let listed = String(text[start.upperBound..<stop.lowerBound])
        let built = SeccompPolicy.markdown()
        if listed != built, ProcessInfo.processInfo.environment["ENGRAM_UPDATE_DOCS"] == "1" {
            try (text[..<start.upperBound] + built + text[stop.lowerBound...]).write(toFile: path, atomically: true, encoding: .utf8)
            return
        }
        #expect(listed == built, "docs/SECURITY.md's filter lists differ from SeccompPolicy; rerun with ENGRAM_UPDATE_DOCS=1")
    }

    @Test func everyRoleHasAProgramThatChecksTheArchitectureAndTrapsWithItsRole() {
        let programs = SeccompPolicy.programs(audit: false)
        #expect(Set(programs.keys) == Set(ThreadRole.allCases))
        for (role, program) in programs {
            let instructions = program.instructions
            #expect(instructions.count < 4096, "\(role): a classic BPF program holds at most 4096 instructions")
            // Architecture check first, then the x32 refusal; the last instruction traps with the role.
            #expect(instructions[1].k == 0xc000_003e, "\(role)")
            #expect(instructions.last?.k == 0x0003_0000 | UInt32(role.rawValue), "\(role)")
            #expect(instructions[5].k == 0x0003_0000 | UInt32(role.rawValue), "\(role): x32 calls trap")
        }
        let audit = SeccompPolicy.programs(audit: true)
        #expect(audit.values.allSatisfy { $0.instructions.last?.k == 0x7ffc_0000 }, "audit mode logs instead")
    }

    @Test func controlAllowsEveryCallOfEveryRoleAndNoRoleAllowsTheDangerousOnes() {
        let allowed = { (role: ThreadRole) -> Set<SystemCall> in
            let program = SeccompPolicy.programs(audit: false)[role]!
            return Set(program.instructions.dropFirst(6).filter { $0.code == 0x15 }.compactMap { SystemCall(rawValue: Int32(bitPattern: $0.k)) })
        }
        let control = allowed(.control)
        for role in ThreadRole.allCases {
            let calls = allowed(role)
            #expect(calls.isSubset(of: control), "\(role) allows \(calls.subtracting(control)) that control does not")
            let dangerous: Set<SystemCall> = [.ptrace, .mount, .umount2, .pivot_root, .chroot, .setuid, .setgid, .bpf, .kexec_load, .init_module,
                                              .finit_module, .process_vm_writev, .process_vm_readv, .perf_event_open, .keyctl, .add_key, .personality, .unshare, .setns]
            #expect(calls.isDisjoint(with: dangerous), "\(role) allows \(calls.intersection(dangerous))")
        }
        #expect(!allowed(.vcpu).contains(.openat) && !allowed(.vcpu).contains(.execve) && !allowed(.vcpu).contains(.socket))
        #expect(!allowed(.display).contains(.ioctl) && !allowed(.display).contains(.openat))
    }
}

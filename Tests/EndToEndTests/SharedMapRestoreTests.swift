import Foundation
import Testing
import TestSupport

/// Many VMs restored with --memory map from one snapshot share its page cache: ten restores of a
/// 1 GiB guest that filled 256 MiB, each reading all of it, cost about one copy, not ten.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct SharedMapRestoreTests {
    let directory = TemporaryDirectory()

    @Test func tenMappedRestoresShareOneSnapshot() throws {
        let path = directory.path("shared.snap")
        let socket = directory.path("source.sock")
        let digest: String
        do {
            let (process, _) = try TestKernel.boot(memory: "1G", extra: ["--api-socket", socket])
            defer { process.stop() }
            let fill = try process.command("fill 256 11", expect: "FILL ", timeout: 120)
            digest = try #require(TestKernel.field("digest", in: fill))
            let result = try runEngram(["snapshot", socket, path, "--stay-paused"], timeout: 120)
            #expect(result.status == 0, "\(result.errors)")
        }
        var restored: [GuestProcess] = []
        defer { for process in restored { process.stop() } }
        for _ in 0..<10 {
            let process = try GuestProcess.engram(["restore", path, "--memory", "map"])
            restored.append(process)
            // Reading every filled page maps the whole 256 MiB into this VM.
            let line = try process.command("digest", expect: "DIGEST ", timeout: 120)
            #expect(TestKernel.field("digest", in: line) == digest)
        }
        let proportional = try restored.map { try Self.proportionalSetSize(of: $0.processID) }.reduce(0, +)
        let resident = try restored.map { try Self.residentSetSize(of: $0.processID) }.reduce(0, +)
        print("10 mapped restores: resident \(resident >> 20) MiB summed, proportional \(proportional >> 20) MiB")
        // Ten private copies would be 2.5 GiB at least; shared, it is one 256 MiB copy plus ten VMMs.
        #expect(resident >= 10 * (256 << 20), "each VM should see all 256 MiB")
        #expect(proportional < 1 << 30, "the ten VMs use \(proportional >> 20) MiB between them")
    }

    static func proportionalSetSize(of pid: Int32) throws -> UInt64 { try rollupField("Pss:", pid) }
    static func residentSetSize(of pid: Int32) throws -> UInt64 { try rollupField("Rss:", pid) }

    /// A field of /proc/PID/smaps_rollup, in bytes.
    static func rollupField(_ name: String, _ pid: Int32) throws -> UInt64 {
        let text = try String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)
        let line = text.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
        return (UInt64(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
}

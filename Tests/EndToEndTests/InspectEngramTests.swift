import Foundation
import Testing
import TestSupport

/// `engram mem` on Engram's own test kernel: a running VM through its control socket (memfd
/// regions read through /proc), its snapshots (full and diff), and the exports made from them.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct InspectEngramTests {
    let directory = TemporaryDirectory()

    /// Runs `engram mem ARGS`, expecting success; returns standard output.
    func mem(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let result = try runEngram(["mem"] + arguments)
        #expect(result.status == 0, "engram mem \(arguments.joined(separator: " ")): \(result.errors)", sourceLocation: sourceLocation)
        return result.output
    }

    /// Runs `engram mem ARGS`, expecting a one-line refusal containing `expected`.
    func refusal(_ arguments: [String], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try runEngram(["mem"] + arguments)
        #expect(result.status != 0, sourceLocation: sourceLocation)
        #expect(result.errors.split(separator: "\n").count == 1, "\(result.errors)", sourceLocation: sourceLocation)
        #expect(result.errors.contains(expected), "\(result.errors)", sourceLocation: sourceLocation)
    }

    /// The hex dump's bytes as text (the part between the bars of each line).
    static func dumpText(_ output: String) -> String {
        output.split(separator: "\n").compactMap { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().first.map(String.init)
        }.joined()
    }

    @Test func runningVMSnapshotsAndExportsAreSearchedAndWalked() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(cpus: 2, extra: ["--api-socket", socket])
        defer { process.stop() }
        let (tag, tagAddress) = try TestKernel.writeTag(process)
        #expect(tagAddress == 0x300000)
        _ = try process.command("fill 16 5", expect: "FILL ")

        // Live, while the guest runs: the memfd is read through /proc/PID/fd.
        let regions = try mem(["regions", socket])
        #expect(regions.contains("running Engram VM") && regions.contains("ram: 256 MiB"), "\(regions)")
        let live = try mem(["search", socket, tag])
        #expect(live.contains("0x00300000 ram+0x300000"), "\(live)")
        try refusal(["read", socket, "--virt", "0x300000"], "pause the VM")

        // Paused: registers come from GET /vm/vcpus, and the walk goes through the guest's 2 MiB pages.
        #expect(try runEngram(["ctl", socket, "pause"]).status == 0)
        let walked = try mem(["read", socket, "--virt", "0x300000", "--length", "64"])
        #expect(Self.dumpText(walked).hasPrefix(tag), "\(walked)")
        #expect(try runEngram(["ctl", socket, "resume"]).status == 0)

        // A full snapshot, then a diff after the tag changes.
        let full = directory.path("full.snap")
        #expect(try runEngram(["snapshot", socket, full]).status == 0)
        let (newTag, _) = try TestKernel.writeTag(process)
        let diff = directory.path("diff.snap")
        let diffResult = try runEngram(["snapshot", socket, diff, "--diff"])
        #expect(diffResult.status == 0, "\(diffResult.errors)")

        #expect(try mem(["search", full, tag]).contains("0x00300000 ram+0x300000"))
        #expect(try mem(["search", diff, newTag]).contains("0x00300000 ram+0x300000"))
        #expect(Self.dumpText(try mem(["read", full, "--virt", "0x300000", "--length", "48"])).hasPrefix(tag))
        #expect(Self.dumpText(try mem(["read", diff, "--virt", "0x300000", "--length", "48", "--vcpu", "1"])).hasPrefix(newTag))
        let raw = try runEngram(["mem", "read", full, "0x300000", "--length", "\(tag.utf8.count)", "--raw"])
        #expect(raw.output == tag)

        let changes = try runEngram(["mem", "diff", full, diff])
        #expect(changes.status == 1)
        #expect(changes.output.contains("0x00300000-0x00300fff ram"), "\(changes.output)")

        let stats = try mem(["stats", full, "--json"])
        let rows = try JSONSerialization.jsonObject(with: Data(stats.utf8)) as? [[String: Any]]
        let ram = rows?.first { $0["region"] as? String == "ram" }
        #expect(ram?["pages"] as? Int == 65536)
        let zero = ram?["zero"] as? Int ?? 0, duplicate = ram?["duplicate"] as? Int ?? 0, unique = ram?["unique"] as? Int ?? 0
        #expect(zero + duplicate + unique == 65536)
        #expect(unique >= 16 * 256, "fill wrote 16 MiB of distinct pages: \(stats)")

        // Exports: an ELF core carries the vCPUs' CR3 in its notes; a raw file is physical memory.
        let elf = directory.path("full.elf")
        _ = try mem(["export", full, elf, "--format", "elf"])
        #expect(try mem(["regions", elf]).contains("vCPU 1"))
        #expect(Self.dumpText(try mem(["read", elf, "--virt", "0x300000", "--length", "48"])).hasPrefix(tag))
        #expect(try mem(["search", elf, tag]).contains("0x00300000"))
        let flat = directory.path("full.raw")
        _ = try mem(["export", full, flat, "--format", "raw"])
        #expect(try mem(["search", flat, "--layout", "flat", tag]).contains("0x00300000"))
        for output in [elf, flat] {
            let mode = try FileManager.default.attributesOfItem(atPath: output)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func badAddressesAndInputsAreRefusedInOneLine() throws {
        let socket = directory.path("api.sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let snapshot = directory.path("s.snap")
        #expect(try runEngram(["snapshot", socket, snapshot]).status == 0)
        try refusal(["read", snapshot, "0x7fffffff000"], "is in no region")
        try refusal(["read", snapshot, "--virt", "0x7fff00000000"], "is not mapped")
        try refusal(["read", snapshot, "--virt", "0x0000800000000000"], "canonical")
        try refusal(["read", snapshot, "--virt", "0x1000", "--vcpu", "3"], "has no vCPU 3")
        // A usage mistake: ArgumentParser's error line first, then the usage line.
        let usage = try runEngram(["mem", "search", snapshot])
        #expect(usage.status != 0 && usage.errors.hasPrefix("Error: give either TEXT or --hex HEX"), "\(usage.errors)")
        try refusal(["search", directory.path("absent.snap"), "x"], "No such file")
        let cut = directory.path("cut.snap")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        try bytes.prefix(8192).write(to: URL(fileURLWithPath: cut))
        try refusal(["stats", cut], "cut.snap")
        let searched = try runEngram(["mem", "search", snapshot, "no-such-text-in-this-guest-\(UUID())"])
        #expect(searched.status == 1 && searched.output.isEmpty)
    }
}

import Foundation
import Testing
import TestSupport

/// Main RAM from a hugetlbfs mount and from private anonymous memory.
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"), .serialized)
struct OtherBackingsTests {
    let directory = TemporaryDirectory()

    @Test(.enabled(if: HugePageMount.available, "needs root and a kernel that reserves huge pages"))
    func hugetlbfsBackedGuestRuns() throws {
        let mount = try HugePageMount(in: directory, pages: 64)
        defer { mount.remove() }
        let (process, _) = try TestKernel.boot(memory: "128M", extra: ["--hugetlbfs", mount.path])
        #expect(process.errorText.contains("region ram: 128 MiB, hugetlbfs"))
        let fill = try process.command("fill 32 5", expect: "FILL ")
        #expect(TestKernel.field("digest", in: fill) == TestKernel.field("digest", in: try process.command("digest", expect: "DIGEST ")))
        process.send("poweroff\r")
        #expect(try process.waitForExit() == 0)
    }

    @Test func hugetlbfsSizeMustBeWholeHugePages() throws {
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--memory", "129M", "--hugetlbfs", "/dev/hugepages-absent"])
        #expect(result.status != 0)
        #expect(result.errors.contains("/dev/hugepages-absent is not a directory"))
    }

    @Test func anonymousMemoryGuestRuns() throws {
        let (process, _) = try TestKernel.boot(extra: ["--anonymous-memory"])
        #expect(process.errorText.contains("region ram: 256 MiB, anonymous"))
        _ = try TestKernel.writeTag(process)
        process.send("poweroff\r")
        #expect(try process.waitForExit() == 0)
    }

    @Test func conflictingBackingsAreRefused() throws {
        let result = try runEngram(["run", "--kernel", ProjectPaths.testKernel, "--anonymous-memory", "--hugetlbfs", "/tmp"])
        #expect(result.status != 0)
        #expect(result.errors.contains("choose one backing for main RAM"))
    }
}

import Foundation
import Testing
import TestSupport

/// Guests on hugetlbfs restored onto hugetlbfs (`restore --hugetlbfs`) in copy and lazy mode,
/// from a file and from a page server, and migrated onto it (`receive --hugetlbfs`): memory
/// comes back identical, and a lazy fault installs a whole 2 MiB page (UFFDIO_COPY on hugetlbfs).
@Suite(.enabled(if: TestKernel.available, "needs /dev/kvm and the test kernel (make -C guest)"),
       .enabled(if: HugePageMount.available, "needs root and a kernel that reserves huge pages"),
       .serialized)
struct HugePageRestoreTests {
    let directory = TemporaryDirectory()

    /// Pages per 2 MiB huge page.
    static let hugePagePages = 512

    /// The snapshot of a 128 MiB guest on `mount` (memfd without one) after `fill 24 seed`; its digest.
    func snapshot(_ name: String, on mount: HugePageMount?, seed: Int = 5) throws -> (path: String, digest: String) {
        let path = directory.path(name)
        let socket = directory.path(name + ".api")
        let (process, _) = try TestKernel.boot(memory: "128M", extra: ["--api-socket", socket] + (mount.map { ["--hugetlbfs", $0.path] } ?? []))
        defer { process.stop() }
        if mount != nil { #expect(process.errorText.contains("region ram: 128 MiB, hugetlbfs"), "\(process.errorText)") }
        let line = try process.command("fill 24 \(seed)", expect: "FILL ")
        let digest = try #require(TestKernel.field("digest", in: line))
        let result = try runEngram(["snapshot", socket, path, "--stay-paused"])
        #expect(result.status == 0, "\(result.errors)")
        return (path, digest)
    }

    /// A lazy fill that is complete, and installed only whole huge pages; returns its statistics.
    @discardableResult
    static func expectWholeHugePages(_ socket: String, dataMiB: Int = 24) throws -> [String: Any] {
        let stats = try RestoreTests.memoryStatistics(socket) { ($0["lazy"] as? [String: Any])?["complete"] as? Bool == true }
        let lazy = try #require(stats["lazy"] as? [String: Any], "\(stats)")
        #expect(lazy["complete"] as? Bool == true, "\(lazy)")
        #expect(lazy["failure"] == nil, "\(lazy)")
        #expect(lazy["present_pages"] as? Int == lazy["total_pages"] as? Int, "\(lazy)")
        let installed = ["demand_pages", "background_pages", "prefetch_pages"].map { lazy[$0] as? Int ?? 0 }
        #expect(installed.allSatisfy { $0 % Self.hugePagePages == 0 }, "\(lazy)")
        // The data's huge pages came in whole.
        #expect(installed.reduce(0, +) >= dataMiB / 2 * Self.hugePagePages, "\(lazy)")
        return lazy
    }

    /// The restored guest carries on: same memory, its clock goes on, new work runs, it powers off.
    func expectCarriesOn(_ restored: GuestProcess, digest: String) throws {
        let line = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest, "\(line)")
        let ticks = try TestKernel.ticks(restored)
        _ = try restored.command("fill 4 9", expect: "FILL ")
        #expect(try TestKernel.ticks(restored) > ticks)
        restored.send("poweroff\r")
        #expect(try restored.waitForExit() == 0)
    }

    @Test(arguments: [("file", "copy"), ("file", "lazy"), ("tcp", "copy"), ("tcp", "lazy"), ("file", "map")])
    func aHugetlbfsGuestRestoresOntoHugePages(source: String, memory: String) throws {
        let mount = try HugePageMount(in: directory, pages: 2 * 64 + 8)
        defer { mount.remove() }
        let (path, digest) = try snapshot("\(source)-\(memory).snap", on: mount)
        var url = path
        var extra: [String] = []
        var server: GuestProcess?
        defer { server?.stop() }
        if source == "tcp" {
            let secret = try MigrationPair.secretFile(in: directory, "secret-\(memory)")
            let serving = try GuestProcess.engram(["serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret])
            server = serving
            let line = try serving.waitForErrorLine(containing: "serving ")
            let port = try #require(line.components(separatedBy: " on ").last?.split(separator: " ").first?.split(separator: ":").last)
            url = "tcp://127.0.0.1:\(port)"
            extra = ["--secret-file", secret]
        }
        let socket = directory.path("\(source)-\(memory).restored.api")
        // A mapped restore's memory is the snapshot file, so it takes no --hugetlbfs (refused below).
        let hugetlbfs = memory == "map" ? [] : ["--hugetlbfs", mount.path]
        let restored = try GuestProcess.engram(["restore", url, "--memory", memory, "--api-socket", socket] + hugetlbfs + extra)
        defer { restored.stop() }
        let backing = memory == "map" ? "region ram: 128 MiB, snapshot-private" : "region ram: 128 MiB, hugetlbfs"
        try restored.waitForErrorLine(containing: backing)
        if memory == "lazy" { try Self.expectWholeHugePages(socket) }
        try expectCarriesOn(restored, digest: digest)
    }

    @Test func aMappedRestoreOntoHugePagesIsRefusedInOneLine() throws {
        let result = try runEngram(["restore", directory.path("any.snap"), "--memory", "map", "--hugetlbfs", "/dev/hugepages"])
        #expect(result.status != 0)
        #expect(result.errors.contains("--hugetlbfs needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself"), "\(result.errors)")
    }

    /// A standby VMM on huge pages, its pool reserved when it starts (a pool too small is refused
    /// as a restore's is: aPoolTooSmallIsRefusedInOneLine): a mapped restore is refused and it
    /// stays ready; a copy or lazy restore fills its huge pages in place, and the guest carries on.
    @Test(arguments: ["copy", "lazy"])
    func aStandbyVMMOnHugePagesRestoresIntoThem(memory: String) throws {
        let (path, digest) = try snapshot("standby-\(memory).snap", on: nil)
        let mount = try HugePageMount(in: directory, name: "standby-\(memory)", pages: 64 + 8)
        defer { mount.remove() }
        let socket = directory.path("standby-\(memory).api")
        let standby = try GuestProcess.engram(["standby", "--memory", "128M", "--hugetlbfs", mount.path, "--api-socket", socket])
        defer { standby.stop() }
        #expect(try standby.waitForErrorLine(containing: "standby: ").contains("128 MiB on huge pages"))
        let mapped = try StandbyTests.request(socket, "PUT", "/vm/restore", ["snapshot": path, "memory": "map"])
        #expect(mapped.status == 400, "\(mapped)")
        #expect((mapped.body["error"] as? String ?? "").contains("a mapped restore's memory is the snapshot file itself"), "\(mapped)")
        let restored = try StandbyTests.request(socket, "PUT", "/vm/restore", ["snapshot": path, "memory": memory])
        #expect(restored.status == 200, "\(restored)")
        let regions = try StandbyTests.request(socket, "GET", "/vm/memory").body["regions"] as? [[String: Any]]
        #expect(regions?.first?["backing"] as? String == "hugetlbfs", "\(String(describing: regions))")
        if memory == "lazy" { try Self.expectWholeHugePages(socket) }
        try expectCarriesOn(standby, digest: digest)
    }

    @Test(arguments: ["copy", "lazy"])
    func aPoolTooSmallIsRefusedInOneLine(memory: String) throws {
        let (path, _) = try snapshot("short-\(memory).snap", on: nil)
        let mount = try HugePageMount(in: directory, name: "short-\(memory)", pages: 8)
        defer { mount.remove() }
        let result = try runEngram(["restore", path, "--memory", memory, "--hugetlbfs", mount.path])
        #expect(result.status != 0)
        #expect(result.errors.contains("region ram needs 128 MiB of free huge pages in \(mount.path)"), "\(result.errors)")
    }

    @Test(arguments: ["precopy", "postcopy"])
    func aMigrationArrivesOnHugePages(mode: String) throws {
        let mount = try HugePageMount(in: directory, pages: 64 + 8)
        defer { mount.remove() }
        let pair = try MigrationPair(directory: directory)
        defer { pair.shutDown() }
        let api = directory.path("\(mode)-destination.api")
        let (destination, url) = try pair.receive(apiSocket: api, extra: ["--hugetlbfs", mount.path])
        let (source, socket) = try pair.source("\(mode)-source", memory: "128M")
        let fill = try source.command("fill 24 3", expect: "FILL ")
        let digest = try #require(TestKernel.field("digest", in: fill))
        let migration = try pair.migrate(socket, to: url, mode: mode)
        #expect(migration.status == 0, "\(migration.errors)")
        #expect(try source.waitForExit() == 0, "\(source.errorText)")
        try destination.waitForErrorLine(containing: "the guest runs here")
        #expect(destination.errorText.contains("region ram: 128 MiB, hugetlbfs"), "\(destination.errorText)")
        if mode == "postcopy" { try Self.expectWholeHugePages(api) }
        try expectCarriesOn(destination, digest: digest)
    }
}

import Foundation
import Testing
import TestSupport

/// Snapshots of the test kernel stored in a real SeaweedFS (started here) and restored from it:
/// lazily with a digest check, with a recorded working set prefetched, through a volume-server
/// restart mid-restore (the guest waits, then goes on with the same memory), and refusals.
@Suite(.enabled(if: TestKernel.available && SeaweedFS.available, "needs /dev/kvm, the test kernel and weed"), .serialized)
struct ObjectStoreRestoreTests {
    let directory = TemporaryDirectory()

    /// The AWS variables engram reads, for this store.
    static func environment(_ store: SeaweedFS, secret: String? = nil) -> [String: String] {
        ["AWS_ACCESS_KEY_ID": store.accessKey, "AWS_SECRET_ACCESS_KEY": secret ?? store.secretKey,
         "AWS_ENDPOINT_URL": store.endpoint, "AWS_REGION": "us-east-1"]
    }

    /// Boots the test kernel, fills memory, snapshots it to `s3://BUCKET/NAME`; returns the fill's digest.
    func snapshotToStore(_ store: SeaweedFS, bucket: String, name: String, fillMiB: Int = 48) throws -> String {
        let socket = directory.path("\(name).sock")
        let (process, _) = try TestKernel.boot(extra: ["--api-socket", socket])
        defer { process.stop() }
        let fill = try process.command("fill \(fillMiB) 7", expect: "FILL ")
        let snapshot = try runEngram(["snapshot", socket, "s3://\(bucket)/\(name)", "--create-bucket"], environment: Self.environment(store), timeout: 120)
        #expect(snapshot.status == 0, "\(snapshot.errors)")
        #expect(snapshot.errors.contains("pushed"), "\(snapshot.errors)")
        return try #require(TestKernel.field("digest", in: fill))
    }

    func restore(_ store: SeaweedFS, _ url: String, extra: [String] = []) throws -> GuestProcess {
        try GuestProcess.engram(["restore", url, "--memory", "lazy", "--chunk-cache", directory.path("cache-\(UUID().uuidString.prefix(6))")] + extra,
                                environment: Self.environment(store))
    }

    @Test func lazyRestoreFromTheStoreHasTheSameMemory() throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed"))
        defer { store.stop() }
        let digest = try snapshotToStore(store, bucket: "fleet", name: "vm-1")
        let restored = try restore(store, "s3://fleet/vm-1", extra: ["--api-socket", directory.path("r.sock")])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "restored")
        let line = try restored.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
        let stats = try runEngram(["ctl", directory.path("r.sock"), "get", "/vm/memory/stats"])
        #expect(stats.output.contains("\"demand_faults\""), "\(stats.output)")

        // With --no-chunk-cache the memory is the same and nothing is written on this host (the
        // default cache would be under XDG_CACHE_HOME).
        let cacheHome = directory.path("xdg-cache")
        var environment = Self.environment(store)
        environment["XDG_CACHE_HOME"] = cacheHome
        let uncached = try GuestProcess.engram(["restore", "s3://fleet/vm-1", "--memory", "lazy", "--no-chunk-cache"], environment: environment)
        defer { uncached.stop() }
        _ = try uncached.waitForErrorLine(containing: "restored")
        #expect(TestKernel.field("digest", in: try uncached.command("digest", expect: "DIGEST ")) == digest)
        #expect(!FileManager.default.fileExists(atPath: cacheHome), "--no-chunk-cache made \(cacheHome)")

        // A second snapshot of the same guest image stores only what differs.
        _ = try snapshotToStore(store, bucket: "fleet", name: "vm-2")
        let push = try runEngram(["push", directory.path("absent.snap"), "s3://fleet/x"], environment: Self.environment(store))
        #expect(push.status != 0 && push.errors.split(separator: "\n").count == 1)
    }

    /// A standby VMM restores from the store too (the request names s3://), lazily and by copy.
    @Test(arguments: ["lazy", "copy"])
    func aStandbyVMMRestoresFromTheStore(mode: String) throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed-\(mode)"))
        defer { store.stop() }
        let digest = try snapshotToStore(store, bucket: "standby", name: "vm-\(mode)")
        let socket = directory.path("standby-\(mode).sock")
        // The copy keeps no chunk cache (nothing may appear under XDG_CACHE_HOME); the lazy one names its own.
        let cacheHome = directory.path("xdg-cache-standby-\(mode)")
        var variables = Self.environment(store)
        variables["XDG_CACHE_HOME"] = cacheHome
        let cache = mode == "copy" ? ["--no-chunk-cache"] : ["--chunk-cache", directory.path("cache-standby-\(mode)")]
        let standby = try GuestProcess.engram(["standby", "--memory", "256M", "--api-socket", socket] + cache, environment: variables)
        defer { standby.stop() }
        _ = try standby.waitForErrorLine(containing: "standby: ")
        let answer = try runEngram(["ctl", socket, "put", "/vm/restore", "--data", #"{"snapshot": "s3://standby/vm-\#(mode)", "memory": "\#(mode)"}"#])
        #expect(answer.status == 0 && answer.output.contains("\"running\""), "\(answer.output) \(answer.errors)")
        #expect(TestKernel.field("digest", in: try standby.command("digest", expect: "DIGEST ")) == digest)
        // The long-lived VMM read the secret once; its environment no longer shows it.
        let environment = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(standby.processID)/environ"))
        #expect(!environment.isEmpty && environment.range(of: Data(store.secretKey.utf8)) == nil, "the S3 secret is still in the standby VMM's environment")
        #expect(environment.range(of: Data(store.accessKey.utf8)) != nil, "only the secret goes")
        #expect(!FileManager.default.fileExists(atPath: cacheHome), "a chunk cache appeared under XDG_CACHE_HOME")
        if mode == "lazy" { #expect(FileManager.default.fileExists(atPath: directory.path("cache-standby-\(mode)"))) }
    }

    @Test func workingSetIsRecordedInTheStoreThenPrefetched() throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed"))
        defer { store.stop() }
        let digest = try snapshotToStore(store, bucket: "wset", name: "vm")
        let recording = try restore(store, "s3://wset/vm", extra: ["--record-working-set", "2"])
        _ = try recording.command("digest", expect: "DIGEST ")
        _ = try recording.waitForErrorLine(containing: "recorded a working set", timeout: 60)
        recording.stop()
        let prefetched = try restore(store, "s3://wset/vm", extra: ["--api-socket", directory.path("p.sock")])
        defer { prefetched.stop() }
        let line = try prefetched.command("digest", expect: "DIGEST ")
        #expect(TestKernel.field("digest", in: line) == digest)
        let stats = try runEngram(["ctl", directory.path("p.sock"), "get", "/vm/memory/stats"])
        let lazy = (try JSONSerialization.jsonObject(with: Data(stats.output.utf8)) as? [String: Any])?["lazy"] as? [String: Any]
        #expect((lazy?["prefetch_pages"] as? Int ?? 0) > 0, "\(stats.output)")
    }

    /// Onto hugetlbfs: each lazy fault installs a whole 2 MiB page from the store's chunks, and a
    /// recorded working set is prefetched a huge page at a time.
    @Test(.enabled(if: HugePageMount.available, "needs root and a kernel that reserves huge pages"))
    func aRestoreOntoHugePagesInstallsWholeHugePagesFromTheStore() throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed"))
        defer { store.stop() }
        let digest = try snapshotToStore(store, bucket: "huge", name: "vm")
        let mount = try HugePageMount(in: directory, pages: 128 + 8)
        defer { mount.remove() }
        let recording = try restore(store, "s3://huge/vm", extra: ["--hugetlbfs", mount.path, "--record-working-set", "2", "--api-socket", directory.path("h1.sock")])
        #expect(TestKernel.field("digest", in: try recording.command("digest", expect: "DIGEST ")) == digest)
        _ = try recording.waitForErrorLine(containing: "recorded a working set", timeout: 60)
        try HugePageRestoreTests.expectWholeHugePages(directory.path("h1.sock"), dataMiB: 48)
        recording.stop()
        let prefetched = try restore(store, "s3://huge/vm", extra: ["--hugetlbfs", mount.path, "--api-socket", directory.path("h2.sock")])
        defer { prefetched.stop() }
        #expect(TestKernel.field("digest", in: try prefetched.command("digest", expect: "DIGEST ")) == digest)
        let lazy = try HugePageRestoreTests.expectWholeHugePages(directory.path("h2.sock"), dataMiB: 48)
        #expect((lazy["prefetch_pages"] as? Int ?? 0) > 0, "\(lazy)")
    }

    @Test func theGuestWaitsThroughAVolumeServerRestart() throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed"))
        defer { store.stop() }
        let digest = try snapshotToStore(store, bucket: "restart", name: "vm")
        // Recording holds the background fill back, so pages come only on demand while the volume server is away.
        let restored = try restore(store, "s3://restart/vm", extra: ["--record-working-set", "30", "--api-socket", directory.path("v.sock")])
        defer { restored.stop() }
        _ = try restored.waitForErrorLine(containing: "restored")
        store.stopVolumeServer()
        restored.send("digest\r")
        Thread.sleep(forTimeInterval: 3)
        #expect(!restored.consoleText.contains("DIGEST "), "the digest finished while the store was away: pages came from nowhere")
        try store.startVolumeServer()
        let line = try restored.waitForLine(containing: "DIGEST ", timeout: 120)
        #expect(TestKernel.field("digest", in: line) == digest)
        #expect(restored.isRunning)
    }

    @Test func missingSnapshotsAndWrongCredentialsAreRefusedInOneLine() throws {
        let store = try SeaweedFS.start(directory: directory.url.appendingPathComponent("weed"))
        defer { store.stop() }
        _ = try snapshotToStore(store, bucket: "refuse", name: "vm", fillMiB: 8)
        let missing = try runEngram(["restore", "s3://refuse/nothing", "--memory", "lazy"], environment: Self.environment(store))
        #expect(missing.status != 0)
        #expect(missing.errors.contains("no snapshot was stored under that name"), "\(missing.errors)")
        #expect(missing.errors.split(separator: "\n").count == 1, "\(missing.errors)")

        let wrong = "wrong-secret-\(UUID().uuidString)"
        let refused = try runEngram(["restore", "s3://refuse/vm", "--memory", "lazy"], environment: Self.environment(store, secret: wrong))
        #expect(refused.status != 0)
        #expect(refused.errors.split(separator: "\n").count == 1, "\(refused.errors)")
        for secret in [wrong, store.secretKey] { #expect(!refused.errors.contains(secret) && !refused.output.contains(secret)) }

        var noCredentials = Self.environment(store)
        noCredentials["AWS_ACCESS_KEY_ID"] = ""
        let unset = try runEngram(["restore", "s3://refuse/vm", "--memory", "lazy"], environment: noCredentials)
        #expect(unset.status != 0 && unset.errors.contains("AWS_ACCESS_KEY_ID"), "\(unset.errors)")

        let both = try runEngram(["restore", "s3://refuse/vm", "--chunk-cache", directory.path("c"), "--no-chunk-cache"], environment: Self.environment(store))
        #expect(both.status != 0 && both.errors.contains("choose one: --chunk-cache DIR or --no-chunk-cache"), "\(both.errors)")
        let notS3 = try runEngram(["restore", directory.path("any.snap"), "--no-chunk-cache"])
        #expect(notS3.status != 0 && notS3.errors.contains("--chunk-cache and --no-chunk-cache go with an s3:// snapshot"), "\(notS3.errors)")
    }
}

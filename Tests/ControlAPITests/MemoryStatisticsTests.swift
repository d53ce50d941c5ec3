import ControlAPI
import Foundation
import Testing

/// GET /vm/memory/stats: `{}` for a booted VM; snake_case restore and lazy parts otherwise.
@Suite struct MemoryStatisticsTests {
    @Test func aBootedVMReportsNothing() throws {
        let router = Router(control: FakeVMControl(), version: "1")
        let response = router.respond(method: "GET", target: "/vm/memory/stats", body: RequestBody([]))
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == "{}")
        #expect(router.respond(method: "PUT", target: "/vm/memory/stats", body: RequestBody([])).status == 405)
    }

    @Test func aLazyRestoreReportsEveryFieldInSnakeCase() throws {
        struct Restored: PartialVMControl {
            func vmInfo() -> VMInfo { VMInfo(state: "running", vcpus: 1, uptimeSeconds: 1, memorySizeInBytes: 1 << 20) }
            func memoryRegions() -> [MemoryRegionInfo] { [] }
            func pause() throws(VMControlError) {}
            func resume() throws(VMControlError) {}
            func shutdown() throws(VMControlError) {}
            func memoryStatistics() -> MemoryStatistics {
                MemoryStatistics(
                    restore: RestoreInfo(snapshot: "/s/vm.snap", mode: "lazy", chainLength: 2, restoreMilliseconds: 3.5),
                    lazy: LazyFillInfo(
                        totalPages: 256, presentPages: 100, demandFaults: 3, demandZeroFaults: 1, demandPages: 20,
                        backgroundPages: 80, untouchedPages: 0, alreadyPresentFaults: 0, complete: false, failure: nil,
                        fillMilliseconds: nil, faultLatency: LatencyInfo(
                            count: 3, p50Us: 30, p90Us: 40, p99Us: 41, maxUs: 41, meanUs: 33,
                            buckets: [LatencyBucketInfo(upToUs: 32, count: 1), LatencyBucketInfo(upToUs: 64, count: 2)])))
            }
        }
        let response = Router(control: Restored(), version: "1").respond(method: "GET", target: "/vm/memory/stats", body: RequestBody([]))
        let top = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        let restore = try #require(top["restore"] as? [String: Any])
        #expect(Set(restore.keys) == ["snapshot", "mode", "chain_length", "restore_milliseconds"])
        let lazy = try #require(top["lazy"] as? [String: Any])
        #expect(Set(lazy.keys) == ["total_pages", "present_pages", "demand_faults", "demand_zero_faults", "demand_pages",
                                   "background_pages", "untouched_pages", "already_present_faults", "complete", "fault_latency",
                                   "prefetch_pages", "fill_wait_faults", "working_set_pages"])
        let latency = try #require(lazy["fault_latency"] as? [String: Any])
        #expect(Set(latency.keys) == ["count", "p50_us", "p90_us", "p99_us", "max_us", "mean_us", "buckets"])
        #expect((latency["buckets"] as? [[String: Any]])?.first?["up_to_us"] as? Double == 32)
    }
}

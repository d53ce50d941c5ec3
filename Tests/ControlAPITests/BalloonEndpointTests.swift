import ControlAPI
import Foundation
import LinuxSystem
import Testing

/// The balloon routes through the router, with Firecracker's field names on the wire.
@Suite struct BalloonEndpointTests {
    /// A VM whose balloon holds what it was last asked for.
    final class Ballooned: PartialVMControl, Sendable {
        let target = Locked<UInt32>(64)
        let interval = Locked<UInt32>(1)
        func vmInfo() -> VMInfo { FakeVMControl().vmInfo() }
        func memoryRegions() -> [MemoryRegionInfo] { [] }
        func pause() throws(VMControlError) {}
        func resume() throws(VMControlError) {}
        func shutdown() throws(VMControlError) {}

        func balloon() throws(VMControlError) -> BalloonInfo {
            BalloonInfo(
                amountMib: target.withLock { $0 }, deflateOnOom: true, statsPollingIntervalS: interval.withLock { $0 }, freePageReporting: true,
                actualPages: 256, inflatedPages: 256, deflatedPages: 0, reports: 2, reportedBytes: 4 << 20, discardedBytes: 5 << 20, invalidPages: 0)
        }
        func setBalloon(_ update: BalloonUpdate) throws(VMControlError) -> BalloonInfo {
            guard update.amountMib <= 1024 else { throw .invalidRequest(reason: "amount_mib \(update.amountMib) is more than the guest's 1024 MiB") }
            target.withLock { $0 = update.amountMib }
            return try balloon()
        }
        func balloonStatistics() throws(VMControlError) -> BalloonStatisticsInfo {
            var info = BalloonStatisticsInfo(targetPages: target.withLock { $0 } * 256, actualPages: 256, updates: 3)
            info.freeMemory = 1 << 30
            return info
        }
        func setBalloonStatistics(_ update: BalloonStatisticsUpdate) throws(VMControlError) -> BalloonInfo {
            interval.withLock { $0 = update.statsPollingIntervalS }
            return try balloon()
        }
    }

    private func call(_ router: Router, _ method: String, _ target: String, _ body: String = "") -> (status: Int, json: [String: Any]) {
        let response = router.respond(method: method, target: target, body: RequestBody(Array(body.utf8)))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    @Test func theBalloonIsReadAndSetWithFirecrackersNames() {
        let router = Router(control: Ballooned(), version: "1")
        let read = call(router, "GET", "/vm/balloon")
        #expect(read.status == 200 && read.json["amount_mib"] as? Int == 64 && read.json["actual_mib"] as? Int == 1)
        #expect(read.json["deflate_on_oom"] as? Bool == true && read.json["stats_polling_interval_s"] as? Int == 1)
        let set = call(router, "PUT", "/vm/balloon", #"{"amount_mib": 300}"#)
        #expect(set.status == 200 && set.json["amount_mib"] as? Int == 300 && set.json["target_pages"] as? Int == 300 * 256)
        let tooBig = call(router, "PUT", "/vm/balloon", #"{"amount_mib": 5000}"#)
        #expect(tooBig.status == 400 && (tooBig.json["error"] as? String)?.contains("5000") == true)
        #expect(call(router, "PUT", "/vm/balloon", #"{"amount": 1}"#).status == 400)
    }

    @Test func statisticsAreReadAndTheirIntervalChanged() {
        let router = Router(control: Ballooned(), version: "1")
        let stats = call(router, "GET", "/vm/balloon/statistics")
        #expect(stats.status == 200 && stats.json["free_memory"] as? Int == 1 << 30 && stats.json["swap_in"] == nil)
        #expect(stats.json["updates"] as? Int == 3 && stats.json["target_mib"] as? Int == 64)
        let patched = call(router, "PATCH", "/vm/balloon/statistics", #"{"stats_polling_interval_s": 9}"#)
        #expect(patched.status == 200 && patched.json["stats_polling_interval_s"] as? Int == 9)
    }

    @Test func aVMWithoutABalloonSaysSo() {
        let router = Router(control: FakeVMControl(), version: "1")
        let answer = call(router, "GET", "/vm/balloon")
        #expect(answer.status == 400 && (answer.json["error"] as? String)?.contains("no balloon") == true)
        #expect(call(router, "GET", "/vm/balloon/statistics").status == 400)
    }
}

import ControlAPI
import Foundation
import Testing

/// GET /metrics: Prometheus text with every counter the other routes report, each family declared once.
@Suite struct MetricsEndpointTests {
    struct Busy: PartialVMControl {
        func vmInfo() -> VMInfo { VMInfo(state: "running", vcpus: 2, uptimeSeconds: 12.5, memorySizeInBytes: 1 << 30) }
        func memoryRegions() -> [MemoryRegionInfo] { [] }
        func pause() throws(VMControlError) {}
        func resume() throws(VMControlError) {}
        func shutdown() throws(VMControlError) {}
        func devices() -> [DeviceInfo] {
            [
                DeviceInfo(name: "net0", type: "net", mmioAddress: 0xfeb0_0000, interruptLine: 5, driverStatus: 15, needsReset: false,
                           negotiatedFeatures: 0, brokenQueues: 1, network: NetworkInfo(
                               tap: "tap\"0", mac: "02:00:00:00:00:01", rxPackets: 10, rxBytes: 1000, txPackets: 7, txBytes: 700,
                               rxDropped: 2, txDropped: 3, errors: 0)),
                DeviceInfo(name: "net1", type: "net", mmioAddress: 0xfeb0_1000, interruptLine: 6, driverStatus: 15, needsReset: true,
                           negotiatedFeatures: 0, brokenQueues: 0, network: NetworkInfo(
                               tap: "tap1", mac: "02:00:00:00:00:02", rxPackets: 1, rxBytes: 60, txPackets: 1, txBytes: 60,
                               rxDropped: 0, txDropped: 0, errors: 0)),
            ]
        }
        func memoryStatistics() -> MemoryStatistics {
            MemoryStatistics(
                restore: RestoreInfo(snapshot: "/s", mode: "lazy", chainLength: 1, restoreMilliseconds: 3.25),
                lazy: LazyFillInfo(
                    totalPages: 256, presentPages: 100, demandFaults: 3, demandZeroFaults: 1, demandPages: 20, backgroundPages: 80,
                    untouchedPages: 0, alreadyPresentFaults: 0, complete: false, failure: nil, fillMilliseconds: nil,
                    faultLatency: LatencyInfo(count: 3, p50Us: 30, p90Us: 40, p99Us: 41, maxUs: 41, meanUs: 33,
                                              buckets: [LatencyBucketInfo(upToUs: 32, count: 1), LatencyBucketInfo(upToUs: 64, count: 2)])))
        }
    }

    @Test func everyCounterIsThereOnceDeclaredAndLabelled() throws {
        let response = Router(control: Busy(), version: "1").respond(method: "GET", target: "/metrics", body: RequestBody([]))
        #expect(response.status == 200)
        #expect(response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8")
        let text = String(decoding: response.body, as: UTF8.self)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains(#"engram_vm_state{state="running"} 1"#) && lines.contains(#"engram_vm_state{state="paused"} 0"#))
        #expect(lines.contains("engram_vm_memory_bytes 1073741824") && lines.contains("engram_vm_uptime_seconds 12.5"))
        #expect(lines.contains(#"engram_net_rx_packets_total{device="net0",tap="tap\"0",mac="02:00:00:00:00:01"} 10"#), "\(text)")
        #expect(lines.contains(#"engram_net_tx_dropped_total{device="net1",tap="tap1",mac="02:00:00:00:00:02"} 0"#))
        #expect(lines.contains(#"engram_virtio_needs_reset{device="net1",type="net"} 1"#))
        #expect(lines.contains(#"engram_restore_milliseconds{mode="lazy"} 3.25"#))
        #expect(lines.contains(#"engram_lazy_fault_latency_microseconds_bucket{le="32.0"} 1"#))
        #expect(lines.contains(#"engram_lazy_fault_latency_microseconds_bucket{le="64.0"} 3"#))
        #expect(lines.contains(#"engram_lazy_fault_latency_microseconds_bucket{le="+Inf"} 3"#))
        #expect(lines.contains("engram_lazy_fault_latency_microseconds_count 3"))
        #expect(lines.contains("engram_updates_completed_total 0"))
        // Each family has exactly one HELP and one TYPE line, before its samples.
        let types = lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(types.count == Set(types).count)
        #expect(lines.filter { $0.hasPrefix("# HELP ") }.count == types.count)
        for line in lines where !line.hasPrefix("#") {
            let name = line.prefix { $0 != "{" && $0 != " " }
            #expect(types.contains { name == $0 || name.hasPrefix($0 + "_") }, "\(line) has no TYPE")
        }
        #expect(text.hasSuffix("\n"))
    }
}

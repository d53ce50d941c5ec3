import ControlAPI
import GuestMemory
import Machine
import Paging
import SnapshotFormat

/// A lazy restore's pager, and its statistics in the control API's terms.
package struct LazyFill: Sendable {
    let pager: LazyPager
    let source: any PageSource

    package init(
        regions: [GuestRegion], source: any PageSource, clusterPages: Int = 16, prefetch: WorkingSet? = nil,
        recorder: WorkingSetRecorder? = nil
    ) throws(VMMError) {
        self.source = source
        try Self.copyAhead(named: Machine.framebufferRegionName, of: regions, from: source)
        do throws(PagingError) {
            pager = try LazyPager(
                regions: regions, source: source, faultClusterPages: clusterPages, prefetch: prefetch, recorder: recorder)
        } catch {
            throw .failed(error.description)
        }
    }

    /// Copies the data pages of region `name` (if the memory has it) before the pager takes the
    /// memory: other processes map the display file, and a page one of them read first would be
    /// a page of zeros the pager could no longer fill (userfaultfd sees it present). Its zero
    /// pages are left to the pager: whoever fills them, they are zeros.
    static func copyAhead(named name: String, of regions: [GuestRegion], from source: any PageSource) throws(VMMError) {
        guard let index = regions.firstIndex(where: { $0.name == name }), index < source.regionCount else { return }
        do { try SnapshotMemoryLoader.copyDataPages(from: source, region: index, into: regions[index]) } catch {
            throw .failed("cannot read region \(name) ahead of the fill: \(error)")
        }
    }

    package func start(onFailure: @escaping @Sendable (String) -> Void) throws(VMMError) {
        do { try pager.start(onFailure: onFailure) } catch { throw .failed(error.description) }
    }

    /// Starts filling `machine`'s memory: a failure ends the machine, snapshots wait for the
    /// fill, and pages the balloon gives back go through the pager first. `beforeFill` runs once
    /// faults are served and before the background fill starts (see `LazyPager.startServingFaults`).
    package func start(for machine: Machine, beforeFill: () throws(VMMError) -> Void = {}) throws(VMMError) {
        machine.memoryReclaimer.setGate(pager)
        do { try pager.startServingFaults { message in machine.finish(.memoryFailure(message)) } } catch { throw .failed(error.description) }
        machine.setMemoryFillWait { pager.waitUntilFilled() }
        try beforeFill()
        do { try pager.startFill() } catch { throw .failed(error.description) }
    }

    package func waitUntilFilled() -> Bool { pager.waitUntilFilled() }

    package func stop() { pager.stop() }

    package var info: LazyFillInfo {
        let s = pager.statistics()
        let latency = s.faultLatency
        var info = LazyFillInfo(
            totalPages: s.totalPages, presentPages: s.presentPages, demandFaults: s.demandFaults,
            demandZeroFaults: s.demandZeroFaults, demandPages: s.demandPages, backgroundPages: s.backgroundPages,
            untouchedPages: s.untouchedPages, alreadyPresentFaults: s.alreadyPresentFaults, complete: s.complete,
            failure: s.failure, fillMilliseconds: s.fillDurationMilliseconds,
            faultLatency: LatencyInfo(
                count: latency.count, p50Us: latency.p50Microseconds, p90Us: latency.p90Microseconds,
                p99Us: latency.p99Microseconds, maxUs: latency.maxMicroseconds, meanUs: latency.meanMicroseconds,
                buckets: latency.buckets.map { LatencyBucketInfo(upToUs: $0.upperBoundMicroseconds, count: $0.count) }))
        info.prefetchPages = s.prefetchPages
        info.fillWaitFaults = s.fillWaitFaults
        info.workingSetPages = s.workingSetPages
        info.transfer = source.transferStatistics.map {
            TransferInfo(bytesReceived: $0.bytesReceived, bytesSent: $0.bytesSent, requests: $0.requests, pagesReceived: $0.pagesReceived,
                         reconnects: $0.reconnects)
        }
        return info
    }
}

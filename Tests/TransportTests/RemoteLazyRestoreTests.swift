import Foundation
import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// A lazy restore from a page server, end to end without a VM: the first restore records its
/// working set and stores it on the server, the next one prefetches it in one stream.
@Suite struct RemoteLazyRestoreTests {
    let directory = TemporaryDirectory()

    static func emptyRegions() throws -> [GuestRegion] {
        [
            try GuestRegion(name: "ram", sizeInBytes: TransportFixture.ramPages * 4096, backing: .memfd),
            try GuestRegion(name: "high", sizeInBytes: TransportFixture.highPages * 4096, backing: .memfd),
        ]
    }

    /// Reads `pages` of `region` on a thread of its own, as a vCPU would touch them; nil if
    /// they did not all arrive within a minute (a hang guard).
    static func touch(_ region: GuestRegion, _ pages: [UInt64]) -> [[UInt8]]? {
        let result = Shared<[[UInt8]]?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            result.value = pages.map { (try? region.read(count: 4096, at: RegionOffset($0 * 4096))) ?? [] }
            done.signal()
        }
        guard done.wait(timeout: .now() + 60) == .success else { return nil }
        return result.value
    }

    static func sameBytes(_ regions: [GuestRegion], _ chain: SnapshotChain) throws -> Bool {
        try regions.indices.allSatisfy { index in
            try regions[index].read(count: Int(regions[index].sizeInBytes), at: RegionOffset(0))
                == chain.bytes(region: index, first: 0, count: Int(chain.pageCount(region: index)))
        }
    }

    @Test func recordedSetIsStoredOnTheServerAndPrefetchedNextTime() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let server = try TestServer(chain: chain)

        // First restore: one page per fault, so the set is exactly the pages touched.
        let first = try server.source()
        let storeError = Shared<String?>("never stored")
        let stored = DispatchSemaphore(value: 0)
        let recorder = WorkingSetRecorder(milliseconds: 1000, fingerprint: first.manifest.fingerprint) { set in
            do {
                try first.storeWorkingSet(set)
                storeError.value = nil
            } catch { storeError.value = "\(error)" }
            stored.signal()
        }
        let regions = try Self.emptyRegions()
        let pager = try LazyPager(regions: regions, source: first, faultClusterPages: 1, recorder: recorder)
        try pager.start(onFailure: { _ in })
        let ram: [UInt64] = [1300, 3, 1399, 0]
        #expect(try Self.touch(regions[0], ram) == ram.map { try chain.bytes(region: 0, first: $0, count: 1) })
        #expect(try Self.touch(regions[1], [2]) == [chain.bytes(region: 1, first: 2, count: 1)])
        #expect(pager.waitUntilFilled())
        #expect(stored.wait(timeout: .now() + 60) == .success)
        #expect(storeError.value == nil)
        #expect(try Self.sameBytes(regions, chain))

        // Second restore: the set comes back from the server, and the fill streams it first.
        let second = try server.source()
        #expect(second.manifest.workingSetPages == 5)
        let set = try #require(try second.loadWorkingSet())
        #expect(set.pages == ram.map { PageReference(region: 0, page: PageIndex($0)) } + [PageReference(region: 1, page: 2)])
        let again = try Self.emptyRegions()
        let prefetching = try LazyPager(regions: again, source: second, prefetch: set)
        try prefetching.start(onFailure: { _ in })
        #expect(prefetching.waitUntilFilled())
        let statistics = prefetching.statistics()
        #expect(statistics.prefetchPages == 5 && statistics.workingSetPages == 5 && statistics.demandPages == 0)
        #expect(try Self.sameBytes(again, chain))
    }
}

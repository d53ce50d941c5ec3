import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

/// Prints write and verify throughput for a 256 MiB region, half of it filled; asserts only correctness.
@Suite struct SnapshotThroughputTests {
    let directory = TemporaryDirectory()

    @Test func halfFilled256MiBRegion() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 256 << 20, backing: .memfd)
        var block = [UInt8](repeating: 0, count: 256 << 10)
        var generator = SplitMix64(seed: 7)
        for i in 0..<block.count { block[i] = UInt8.random(in: 1...255, using: &generator) }
        // Alternate 256 KiB filled and 256 KiB untouched: 512 runs of 64 pages.
        for chunk in stride(from: UInt64(0), to: 256 << 20, by: 512 << 10) {
            try region.write(block, at: RegionOffset(chunk))
        }
        let memory = GuestMemoryMap(regions: [region], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: region.sizeInBytes, region: region, regionOffset: RegionOffset(0)),
        ])
        let path = directory.path("big.snap")
        let start = monotonicSeconds()
        let summary = try SnapshotWriter.writeFull(memory: memory, state: [], to: path)
        let written = monotonicSeconds() - start
        let reader = try SnapshotReader(path: path)
        let verifyStart = monotonicSeconds()
        try reader.verifyAllPages()
        let verified = monotonicSeconds() - verifyStart

        #expect(summary.pagesWritten == 32768 && summary.pagesZero == 32768)
        let megabytes = Double(summary.pagesWritten * 4096) / 1_048_576
        print("""
            snapshot throughput: 256 MiB region, 128 MiB non-zero: write \(String(format: "%.2f", written)) s \
            = \(Int(megabytes / written)) MB/s of data (\(Int(256 / written)) MB/s of region); \
            verify \(Int(megabytes / verified)) MB/s; file \(SnapshotFixtures.fileSize(path) >> 20) MiB apparent, \
            \(SnapshotFixtures.allocatedBytes(path) >> 20) MiB allocated
            """)
        #expect(SnapshotFixtures.allocatedBytes(path) < 160 << 20)
    }

    func monotonicSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

import Devices
import Glibc
import GuestMemory
import Synchronization
import Testing

/// The balloon against a spec-written driver on a real memfd: pages given up and reported go
/// back to the host, statistics are kept and given back on the device's clock.
@Suite struct VirtioBalloonTests {
    /// A clock the test moves.
    final class TestClock: Sendable {
        let now = Atomic<UInt64>(1_000_000_000)
        var read: @Sendable () -> UInt64 { { self.now.load(ordering: .relaxed) } }
    }

    static let allFeatures = VirtioFeature.version1 | VirtioBalloon.Feature.statisticsQueue | VirtioBalloon.Feature.pageReporting

    static func balloon(_ configuration: BalloonConfiguration, clock: TestClock = TestClock()) -> VirtioBalloon {
        VirtioBalloon(configuration, reclaimer: MemoryReclaimer(), clock: clock.read)
    }

    /// Bytes of the memfd the host holds.
    static func allocatedBytes(_ driver: VirtioTestDriver) -> Int {
        var info = stat()
        guard let fd = driver.memory.regions[0].fileDescriptor, fstat(fd, &info) == 0 else { return -1 }
        return Int(info.st_blocks) * 512
    }

    static func fillPages(_ driver: VirtioTestDriver, from address: UInt64, count: Int) throws {
        for page in 0..<count { try driver.memory.write([UInt8](repeating: 0xA5, count: 4096), at: GuestAddress(address + UInt64(page) * 4096)) }
    }

    static func pageNumbers(_ pages: [UInt32]) -> [UInt8] { pages.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }

    @Test func parsesFirecrackersOptions() throws {
        #expect(try BalloonConfiguration.parse("256") == BalloonConfiguration(amountMiB: 256))
        #expect(try BalloonConfiguration.parse("0,deflate_on_oom,stats_interval_s=5,free_page_reporting")
            == BalloonConfiguration(amountMiB: 0, deflateOnOOM: true, statisticsIntervalSeconds: 5, freePageReporting: true))
        for bad in ["", "x", "-1", "10,stats_interval_s=x", "10,bogus", "99999999999"] {
            #expect(throws: DeviceError.self) { try BalloonConfiguration.parse(bad) }
        }
    }

    @Test func offersOnlyWhatWasConfigured() throws {
        #expect(Self.balloon(BalloonConfiguration(amountMiB: 1)).deviceFeatures == 0)
        #expect(Self.balloon(BalloonConfiguration(amountMiB: 1)).queueMaximumSizes.count == 2)
        let full = Self.balloon(BalloonConfiguration(amountMiB: 1, deflateOnOOM: true, statisticsIntervalSeconds: 1, freePageReporting: true))
        #expect(full.deviceFeatures == VirtioBalloon.Feature.statisticsQueue | VirtioBalloon.Feature.deflateOnOOM | VirtioBalloon.Feature.pageReporting)
        #expect(full.queueMaximumSizes.count == 4)
    }

    @Test func theTargetAndActualLiveInTheConfigurationSpace() throws {
        let driver = try VirtioTestDriver(backend: Self.balloon(BalloonConfiguration(amountMiB: 3)), features: VirtioFeature.version1)
        #expect(driver.device.read(offset: 0x100, size: 4) == 3 * 256)
        driver.device.write(offset: 0x104, size: 4, value: 512)
        #expect(driver.device.read(offset: 0x104, size: 4) == 512)
        driver.device.write(offset: 0x100, size: 4, value: 7)  // the driver cannot move the target
        #expect(driver.device.read(offset: 0x100, size: 4) == 3 * 256)
        #expect(driver.device.read(offset: 0x108, size: 4) == 0)
    }

    @Test func inflatedPagesGoBackToTheHostAndStrayPageNumbersAreIgnored() throws {
        var driver = try VirtioTestDriver(backend: Self.balloon(BalloonConfiguration(amountMiB: 1)), features: VirtioFeature.version1)
        try Self.fillPages(driver, from: 2 << 20, count: 256)
        let before = Self.allocatedBytes(driver)
        // 256 pages from 2 MiB (one run), then one page far outside the 4 MiB of RAM.
        let pages = (0..<256).map { UInt32(512 + $0) } + [0x10_0000]
        try driver.memory.write(Self.pageNumbers(pages), at: GuestAddress(VirtioTestDriver.bufferBase))
        try driver.submit([(VirtioTestDriver.bufferBase, UInt32(pages.count * 4), false)])
        driver.notify()
        #expect(driver.usedIndex == 1)
        #expect(try driver.usedEntry(0).length == 0)
        #expect(try driver.memory.read(count: 4096, at: GuestAddress((2 << 20) + 4096)) == [UInt8](repeating: 0, count: 4096))
        #expect(before - Self.allocatedBytes(driver) >= 960 << 10, "about the MiB given back (shmem counts blocks loosely)")
        let counters = driver.device.withBackend { ($0 as! VirtioBalloon).counters }
        #expect(counters.inflatedPages == 257 && counters.invalidPages == 1 && counters.discardedBytes == 1 << 20)
    }

    @Test func reportedRangesGoBackToTheHost() throws {
        let configuration = BalloonConfiguration(statisticsIntervalSeconds: 1, freePageReporting: true)
        // inflate, deflate, statistics, reporting: the fourth queue reports.
        var driver = try VirtioTestDriver(backend: Self.balloon(configuration), features: Self.allFeatures, queue: 3)
        try Self.fillPages(driver, from: 1 << 20, count: 512)
        try driver.submit([((1 << 20), 1 << 20, true), ((3 << 20) - 4096, 4096, true)])
        driver.notify()
        #expect(driver.usedIndex == 1)
        #expect(try driver.memory.read(count: 8, at: GuestAddress((1 << 20) + 8)) == [UInt8](repeating: 0, count: 8))
        #expect(try driver.memory.read(count: 1, at: GuestAddress((3 << 20) - 4096)) == [0])
        #expect(try driver.memory.read(count: 1, at: GuestAddress((3 << 20) - 8192)) == [0xA5])
        let counters = driver.device.withBackend { ($0 as! VirtioBalloon).counters }
        #expect(counters.reports == 1 && counters.reportedBytes == (1 << 20) + 4096 && counters.discardedBytes == (1 << 20) + 4096)
    }

    @Test func withoutStatisticsTheReportingQueueMovesUp() throws {
        let configuration = BalloonConfiguration(statisticsIntervalSeconds: 1, freePageReporting: true)
        // A driver that declines statistics: Linux then numbers the reporting queue 2.
        var driver = try VirtioTestDriver(
            backend: Self.balloon(configuration), features: VirtioFeature.version1 | VirtioBalloon.Feature.pageReporting, queue: 2)
        try Self.fillPages(driver, from: 1 << 20, count: 1)
        try driver.submit([((1 << 20), 4096, true)])
        driver.notify()
        #expect(try driver.memory.read(count: 1, at: GuestAddress(1 << 20)) == [0])
    }

    @Test func statisticsAreKeptAndTheBufferGivenBackEveryInterval() throws {
        let clock = TestClock()
        let balloon = Self.balloon(BalloonConfiguration(statisticsIntervalSeconds: 2), clock: clock)
        var driver = try VirtioTestDriver(backend: balloon, features: Self.allFeatures & ~VirtioBalloon.Feature.pageReporting, queue: 2)
        // free memory (4) = 1 GiB, total (5) = 2 GiB, an unknown tag 99, and half an entry.
        let entries: [(UInt16, UInt64)] = [(4, 1 << 30), (5, 2 << 30), (99, 1)]
        var bytes: [UInt8] = entries.flatMap { withUnsafeBytes(of: $0.0.littleEndian, Array.init) + withUnsafeBytes(of: $0.1.littleEndian, Array.init) }
        bytes += [1, 2, 3]
        try driver.memory.write(bytes, at: GuestAddress(VirtioTestDriver.bufferBase))
        try driver.submit([(VirtioTestDriver.bufferBase, UInt32(bytes.count), false)])
        driver.notify()
        #expect(driver.usedIndex == 0, "the device keeps the buffer")
        let statistics = driver.device.withBackend { ($0 as! VirtioBalloon).statistics }
        #expect(statistics.freeMemory == 1 << 30 && statistics.totalMemory == 2 << 30 && statistics.swapIn == nil && statistics.updates == 1)
        #expect(driver.device.timerDeadline == clock.now.load(ordering: .relaxed) + 2_000_000_000)
        #expect(driver.device.withBackend { $0.heldChains(queue: 2) } == 1)
        driver.device.serveQueue(2)
        #expect(driver.usedIndex == 0, "not yet due")
        clock.now.add(2_000_000_000, ordering: .relaxed)
        driver.device.serveQueue(2)
        #expect(driver.usedIndex == 1 && driver.interrupts.value == 1)
        #expect(driver.device.timerDeadline == nil)
    }

    @Test func statisticsIntervalChangesFollowFirecrackersRules() throws {
        let off = Self.balloon(BalloonConfiguration())
        #expect(throws: BalloonError.statisticsOff) { try off.setStatisticsInterval(seconds: 1) }
        let on = Self.balloon(BalloonConfiguration(statisticsIntervalSeconds: 1))
        #expect(throws: BalloonError.statisticsCannotStop) { try on.setStatisticsInterval(seconds: 0) }
        try on.setStatisticsInterval(seconds: 9)
        #expect(on.configuration.statisticsIntervalSeconds == 9)
    }

    @Test func aResetForgetsTheBalloonsSize() throws {
        let driver = try VirtioTestDriver(backend: Self.balloon(BalloonConfiguration(amountMiB: 1)), features: VirtioFeature.version1)
        driver.device.write(offset: 0x104, size: 4, value: 256)
        driver.setRegister(0x70, 0)
        #expect(driver.device.read(offset: 0x104, size: 4) == 0)
    }
}

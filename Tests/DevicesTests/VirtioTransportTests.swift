import Devices
import Glibc
import GuestMemory
import LinuxSystem
import Testing

/// The virtio-mmio transport and split virtqueue against a driver written from the spec,
/// including drivers that break the rules.
@Suite struct VirtioTransportTests {
    private static func entropy() -> VirtioEntropy { VirtioEntropy(rate: 1 << 30, burst: 1 << 20) }

    @Test func registersIdentifyAModernDevice() throws {
        let driver = try VirtioTestDriver(backend: Self.entropy(), initialize: false)
        #expect(driver.register(0x000) == 0x7472_6976)
        #expect(driver.register(0x004) == 2)
        #expect(driver.register(0x008) == 4)
        #expect(driver.offeredFeatures & VirtioFeature.version1 != 0)
        #expect(driver.offeredFeatures & VirtioFeature.indirectDescriptors != 0)
        #expect(driver.offeredFeatures & VirtioFeature.eventIndex != 0)
        driver.setRegister(0x30, 0)
        #expect(driver.register(0x034) == 64)
        driver.setRegister(0x30, 7)
        #expect(driver.register(0x034) == 0, "a queue that does not exist has size 0")
    }

    @Test func featuresWithoutVersion1OrUnofferedAreRefused() throws {
        let legacy = try VirtioTestDriver(backend: Self.entropy(), features: VirtioFeature.indirectDescriptors)
        #expect(legacy.status & VirtioStatus.featuresOK == 0)
        #expect(legacy.status & VirtioStatus.driverOK == 0)
        let greedy = try VirtioTestDriver(backend: Self.entropy(), features: VirtioFeature.version1 | 1 << 40)
        #expect(greedy.status & VirtioStatus.featuresOK == 0)
        let good = try VirtioTestDriver(backend: Self.entropy(), features: VirtioFeature.version1)
        #expect(good.status & VirtioStatus.driverOK != 0)
    }

    @Test func resetClearsEverything() throws {
        let driver = try VirtioTestDriver(backend: Self.entropy())
        #expect(driver.status & VirtioStatus.driverOK != 0)
        driver.setRegister(0x70, 0)
        #expect(driver.status == 0)
        driver.setRegister(0x30, 0)
        #expect(driver.register(0x044) == 0)
    }

    @Test func buffersAreFilledAndReturnedWithAnInterrupt() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy(), features: VirtioFeature.version1)
        let head = try driver.submit([(VirtioTestDriver.bufferBase, 256, true)])
        driver.notify()
        #expect(driver.usedIndex == 1)
        let entry = try driver.usedEntry(0)
        #expect(entry.head == UInt32(head) && entry.length == 256)
        #expect(driver.interrupts.value == 1)
        #expect(driver.register(0x060) & 1 == 1)
        driver.setRegister(0x064, 1)
        #expect(driver.register(0x060) == 0)
        let bytes = try driver.memory.read(count: 256, at: GuestAddress(VirtioTestDriver.bufferBase))
        #expect(Set(bytes).count > 100, "random bytes, not zeros")
    }

    @Test func indirectTablesAreFollowed() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.submit([(VirtioTestDriver.bufferBase, 100, true), (VirtioTestDriver.bufferBase + 4096, 28, true)], indirect: true)
        driver.notify()
        #expect(try driver.usedEntry(0).length == 128)
    }

    @Test func eventIndexSuppressesInterruptsTheDriverDidNotAskFor() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        // used_event = 5: no interrupt until the used index passes 5.
        try driver.write16(5, at: VirtioTestDriver.availableRing + 4 + 2 * UInt64(driver.queueSize))
        for _ in 0..<3 {
            try driver.submit([(VirtioTestDriver.bufferBase, 16, true)])
            driver.notify()
        }
        #expect(driver.usedIndex == 3)
        #expect(driver.interrupts.value == 0)
        for _ in 0..<3 {
            try driver.submit([(VirtioTestDriver.bufferBase, 16, true)])
            driver.notify()
        }
        #expect(driver.interrupts.value == 1)
        // The device asked to be notified at the index it reached.
        #expect(try driver.read16(at: VirtioTestDriver.usedRing + 4 + 8 * UInt64(driver.queueSize)) == 6)
    }

    // MARK: Hostile drivers: the queue fails with DEVICE_NEEDS_RESET, nothing outside guest RAM is touched.

    private func expectNeedsReset(_ driver: VirtioTestDriver, _ comment: Comment) {
        #expect(driver.status & VirtioStatus.needsReset != 0, comment)
        #expect(driver.register(0x060) & 2 != 0, "a configuration-change interrupt tells the driver")
        #expect(driver.device.brokenQueueCount == 1)
    }

    @Test func aBufferOutsideGuestRAMBreaksTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.submit([(0xffff_ffff_f000, 4096, true)])
        driver.notify()
        expectNeedsReset(driver, "buffer past RAM")
        #expect(driver.usedIndex == 0)
    }

    @Test func aBufferCrossingTheEndOfRAMBreaksTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.submit([((4 << 20) - 16, 32, true)])
        driver.notify()
        expectNeedsReset(driver, "buffer crossing the end of RAM")
    }

    @Test func aLoopingChainBreaksTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.writeDescriptor(0, address: VirtioTestDriver.bufferBase, length: 8, flags: 1 | 2, next: 1)
        try driver.writeDescriptor(1, address: VirtioTestDriver.bufferBase, length: 8, flags: 1 | 2, next: 0)
        try driver.makeAvailable(0)
        driver.notify()
        expectNeedsReset(driver, "loop")
    }

    @Test func anAvailableIndexFarAheadBreaksTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.forceAvailableIndex(100)
        driver.notify()
        expectNeedsReset(driver, "index jump")
    }

    @Test func aHeadOutsideTheTableBreaksTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.makeAvailable(500)
        driver.notify()
        expectNeedsReset(driver, "head 500 of 16")
    }

    @Test func nestedIndirectTablesBreakTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.writeDescriptor(0, address: VirtioTestDriver.indirectTable + 0x100, length: 16, flags: 4, next: 0, table: VirtioTestDriver.indirectTable)
        try driver.writeDescriptor(0, address: VirtioTestDriver.indirectTable, length: 16, flags: 4, next: 0)
        try driver.makeAvailable(0)
        driver.notify()
        expectNeedsReset(driver, "indirect inside indirect")
    }

    @Test func hugeLengthsBreakTheQueue() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.submit([(VirtioTestDriver.bufferBase, 0xffff_fff0, true), (VirtioTestDriver.bufferBase, 0x100, true)])
        driver.notify()
        expectNeedsReset(driver, "lengths past RAM and past 4 GiB")
    }

    @Test func ringsOutsideGuestRAMAreRefusedWhenTheQueueStarts() throws {
        let driver = try VirtioTestDriver(backend: Self.entropy(), initialize: false)
        driver.setRegister(0x70, 1); driver.setRegister(0x70, 3)
        driver.setRegister(0x24, 1); driver.setRegister(0x20, 1)
        driver.setRegister(0x70, 11)
        driver.setRegister(0x30, 0)
        driver.setRegister(0x38, 16)
        driver.setRegister(0x80, 0xffff_f000); driver.setRegister(0x84, 0xffff)
        driver.setRegister(0x44, 1)
        driver.setRegister(0x70, 15)
        #expect(driver.status & VirtioStatus.needsReset != 0)
    }

    @Test func aDeviceThatNeedsAResetWorksAgainAfterOne() throws {
        var driver = try VirtioTestDriver(backend: Self.entropy())
        try driver.submit([(0xffff_ffff_f000, 4096, true)])
        driver.notify()
        #expect(driver.status & VirtioStatus.needsReset != 0)
        var fresh = driver
        try fresh.negotiate(features: nil)
        #expect(fresh.status & VirtioStatus.needsReset == 0)
        try fresh.forceAvailableIndex(0)
        try fresh.submit([(VirtioTestDriver.bufferBase, 64, true)])
        fresh.notify()
        #expect(fresh.usedIndex == 1)
    }

    @Test func mmioBusRefusesOverlapsAndFloatsUnclaimedReads() throws {
        let driver = try VirtioTestDriver(backend: Self.entropy(), initialize: false)
        let window = MMIOBus.Window(base: 0xfeb0_0000, size: 0x1000)
        #expect(throws: DeviceError.self) {
            try MMIOBus(claims: [(window, "a", driver.device), (MMIOBus.Window(base: 0xfeb0_0800, size: 0x1000), "b", driver.device)])
        }
        let bus = try MMIOBus(claims: [(window, "a", driver.device)])
        #expect(bus.read(address: 0xfeb0_0000, size: 4) == 0x7472_6976)
        #expect(bus.read(address: 0xfeb0_1000, size: 4) == 0xffff_ffff)
        #expect(bus.unclaimedAccessCount == 1)
    }

    /// A rate-limited queue the driver takes down while its wait is pending leaves a deadline
    /// no queue will clear: the I/O thread ignores it once past, rather than spinning on it (it
    /// woke without end, a core at 100%). A reset drops the wait with the rest.
    @Test func aWaitLeftByATakenDownQueueDoesNotSpinTheIOThread() throws {
        // 10 bytes a second: the first request empties the bucket, the next waits 100 ms for a byte.
        var driver = try VirtioTestDriver(backend: VirtioEntropy(rate: 10, burst: 100), features: VirtioFeature.version1)
        for index in 0..<3 { try driver.submit([(VirtioTestDriver.bufferBase + UInt64(index) * 4096, 4096, true)]) }
        let thread = try VirtioIOThread(devices: [driver.device])
        try thread.start()
        defer { thread.stop() }
        var waiting = false
        for _ in 0..<5000 where !waiting {  // a hang guard, not a timing assertion
            waiting = driver.usedIndex == 1 && driver.device.throttledUntil != nil
            if !waiting { usleep(1000) }
        }
        #expect(waiting, "the second request waits on the limit")
        driver.setRegister(0x30, 0)
        driver.setRegister(0x44, 0)  // QueueReady = 0: the queue is taken down, the device still live
        usleep(250_000)  // the deadline passes
        let before = thread.wakeups.load(ordering: .relaxed)
        usleep(300_000)
        let woken = thread.wakeups.load(ordering: .relaxed) - before
        #expect(woken < 20, "the I/O thread woke \(woken) times in 0.3 s with nothing to do")
        driver.setRegister(0x70, 0)
        #expect(driver.device.throttledUntil == nil, "a reset drops the wait")
    }

    /// A zero-length descriptor may name any address: the balloon's report of one discards
    /// nothing (rounding an address in the last page up overflowed and ended the VMM).
    @Test func aZeroLengthRangeAnywhereDiscardsNothing() throws {
        let driver = try VirtioTestDriver(backend: Self.entropy())
        #expect(try MemoryReclaimer().discard(GuestAddress(0xFFFF_FFFF_FFFF_F001), length: 0, in: driver.memory) == 0)
        #expect(try MemoryReclaimer().discard(GuestAddress(4097), length: 4095, in: driver.memory) == 0)
        #expect(try MemoryReclaimer().discard(GuestAddress(0xFFFF_FFFF_FFFF_F001), length: 100, in: driver.memory) == 0)
        #expect(throws: GuestMemoryError.self) { try MemoryReclaimer().discard(GuestAddress(0xFFFF_FFFF_FFFF_F001), length: 8192, in: driver.memory) }
    }

    @Test func tokenBucketLimitsAndRefills() {
        var bucket = TokenBucket(rate: 1000, burst: 100, now: 0)
        #expect(bucket.take(150, now: 0) == 100)
        #expect(bucket.take(10, now: 0) == 0)
        #expect(bucket.readyTime(for: 1, now: 0) == 1_000_000)
        #expect(bucket.take(10, now: 5_000_000) == 5)
        #expect(bucket.take(1000, now: 10_000_000_000) == 100)
    }
}

/// A back-end that serves one chain per call, so a busy queue reaches the transport's round limit.
final class OneChainAtATime: VirtioBackend, @unchecked Sendable {
    private var chain = DescriptorChain(capacity: 16)
    var deviceType: VirtioDeviceType { .entropy }
    var deviceFeatures: UInt64 { 0 }
    var queueMaximumSizes: [UInt16] { [16] }
    func configurationByte(at offset: Int) -> UInt8? { nil }
    func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        guard try queue.pop(into: &chain, memory: memory) else { return false }
        queue.putUsed(head: chain.head, length: 0)
        return true
    }
}

@Suite struct VirtioRoundLimitTests {
    /// With EVENT_IDX, the event index is armed at the index reached even when the round limit
    /// ends the service: a stale one would make the driver skip its next notification.
    @Test func theRoundLimitStillArmsTheNextNotification() throws {
        for count in [4, 5, 9] {
            var driver = try VirtioTestDriver(backend: OneChainAtATime())
            for _ in 0..<count { try driver.submit([(VirtioTestDriver.bufferBase, 8, true)]) }
            driver.notify()
            while driver.usedIndex < UInt16(count), driver.device.queueNotifiers[0].isSignaled { driver.device.serveQueue(0) }
            #expect(driver.usedIndex == UInt16(count))
            let event = try driver.read16(at: VirtioTestDriver.usedRing + 4 + 8 * UInt64(driver.queueSize))
            #expect(event == UInt16(count), "\(count) chains: avail_event is \(event)")
        }
    }
}

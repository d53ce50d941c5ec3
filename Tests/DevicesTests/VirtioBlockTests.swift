import Devices
import Foundation
import GuestMemory
import LinuxSystem
import Synchronization
import Testing
import TestSupport

/// virtio-blk against the spec driver: data goes to the right place in the image, discards
/// leave holes, and every bad request is answered with IOERR or UNSUPP, never served.
@Suite struct VirtioBlockTests {
    private let directory = TemporaryDirectory()
    static let header: UInt64 = VirtioTestDriver.bufferBase
    static let data: UInt64 = VirtioTestDriver.bufferBase + 0x1000
    static let status: UInt64 = VirtioTestDriver.bufferBase + 0x800

    /// A sparse image of `sectors` sectors and a driver for a device over it.
    private func makeDriver(sectors: Int = 2048, readOnly: Bool = false, id: String = "disk-one") throws -> (VirtioTestDriver, String) {
        let path = directory.path("disk-\(UUID().uuidString).img")
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: UInt64(sectors * 512))
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: readOnly), identifier: id)
        return (try VirtioTestDriver(backend: block, queueSize: 16), path)
    }

    private func writeHeader(_ driver: VirtioTestDriver, type: UInt32, sector: UInt64) throws {
        var bytes = withUnsafeBytes(of: type.littleEndian, Array.init) + [0, 0, 0, 0]
        bytes += withUnsafeBytes(of: sector.littleEndian, Array.init)
        try driver.memory.write(bytes, at: GuestAddress(Self.header))
        try driver.memory.write([0xff], at: GuestAddress(Self.status))
    }

    private func statusByte(_ driver: VirtioTestDriver) throws -> UInt8 { try driver.memory.read(count: 1, at: GuestAddress(Self.status))[0] }

    private func pattern(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) } }

    /// Writes `bytes` at `sector` through the queue; the status byte.
    private func write(_ driver: inout VirtioTestDriver, _ bytes: [UInt8], sector: UInt64, indirect: Bool = false) throws -> UInt8 {
        try writeHeader(driver, type: 1, sector: sector)
        try driver.memory.write(bytes, at: GuestAddress(Self.data))
        try driver.submit([(Self.header, 16, false), (Self.data, UInt32(bytes.count), false), (Self.status, 1, true)], indirect: indirect)
        driver.notify()
        return try statusByte(driver)
    }

    /// Reads `count` bytes at `sector` through the queue, the data split over two buffers.
    private func read(_ driver: inout VirtioTestDriver, count: Int, sector: UInt64) throws -> (UInt8, [UInt8]) {
        try writeHeader(driver, type: 0, sector: sector)
        let half = UInt32(count / 2)
        try driver.submit([(Self.header, 16, false), (Self.data, half, true), (Self.data + UInt64(half), UInt32(count) - half, true), (Self.status, 1, true)])
        driver.notify()
        return (try statusByte(driver), try driver.memory.read(count: count, at: GuestAddress(Self.data)))
    }

    @Test func writesLandInTheImageAndReadBack() throws {
        var (driver, path) = try makeDriver()
        let bytes = pattern(8192, seed: 3)
        #expect(try write(&driver, bytes, sector: 100) == 0)
        #expect(try driver.usedEntry(0).length == 1, "a write returns only the status byte")
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(file[51200..<(51200 + 8192)]) == bytes)
        try driver.memory.write([UInt8](repeating: 0, count: 8192), at: GuestAddress(Self.data))
        let (status, back) = try read(&driver, count: 8192, sector: 100)
        #expect(status == 0 && back == bytes)
        #expect(try driver.usedEntry(1).length == 8193)
    }

    /// A batch of large reads is shared out among helper threads, a batch of consecutive writes
    /// goes out as one pwritev: every request lands where it belongs, with its own status; a
    /// FLUSH in a batch keeps its place.
    @Test func largeBatchesSharedByHelpersLandWhereTheyBelong() throws {
        let path = directory.path("batch-\(UUID().uuidString).img")
        FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: 4 << 20)
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: false), identifier: "batch")
        try block.startHelpers(2, name: "test-copy")
        var driver = try VirtioTestDriver(backend: block, queueSize: 64)
        let requests = 8, size = 64 << 10
        func header(_ index: Int) -> UInt64 { Self.header + 0x20 * UInt64(index) }
        func status(_ index: Int) -> UInt64 { Self.status + UInt64(index) }
        func data(_ index: Int) -> UInt64 { VirtioTestDriver.bufferBase + 0x10000 * UInt64(index + 1) }
        let (read, write, flush): (UInt32, UInt32, UInt32) = (0, 1, 4)  // VIRTIO_BLK_T_IN, _OUT, _FLUSH
        func submitBatch(type: UInt32, flushAt: Int? = nil) throws {
            for index in 0..<requests {
                let kind = index == flushAt ? flush : type
                var bytes = withUnsafeBytes(of: kind.littleEndian, Array.init) + [0, 0, 0, 0]
                bytes += withUnsafeBytes(of: UInt64(index * size / 512).littleEndian, Array.init)
                try driver.memory.write(bytes, at: GuestAddress(header(index)))
                try driver.memory.write([0xff], at: GuestAddress(status(index)))
                if kind == flush {
                    try driver.submit([(header(index), 16, false), (status(index), 1, true)])
                } else {
                    try driver.submit([(header(index), 16, false), (data(index), UInt32(size), type == read), (status(index), 1, true)])
                }
            }
            driver.notify()
        }
        for index in 0..<requests { try driver.memory.write(pattern(size, seed: UInt8(index + 1)), at: GuestAddress(data(index))) }
        try submitBatch(type: write)
        #expect(try (0..<requests).allSatisfy { try driver.memory.read(count: 1, at: GuestAddress(status($0)))[0] == 0 })
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        for index in 0..<requests { #expect(Array(file[(index * size)..<((index + 1) * size)]) == pattern(size, seed: UInt8(index + 1)), "request \(index)") }
        #expect(block.counters.mergedWrites.load(ordering: .relaxed) == requests - 1, "consecutive writes went out as one")

        for index in 0..<requests { try driver.memory.write([UInt8](repeating: 0, count: size), at: GuestAddress(data(index))) }
        try submitBatch(type: read)
        for index in 0..<requests {
            #expect(try driver.memory.read(count: 1, at: GuestAddress(status(index)))[0] == 0)
            #expect(try driver.memory.read(count: size, at: GuestAddress(data(index))) == pattern(size, seed: UInt8(index + 1)), "request \(index)")
        }
        #expect(driver.usedIndex == UInt16(2 * requests))
        try submitBatch(type: write, flushAt: 4)
        #expect(try (0..<requests).allSatisfy { try driver.memory.read(count: 1, at: GuestAddress(status($0)))[0] == 0 })
        #expect(block.counters.flushes.load(ordering: .relaxed) == 1 && driver.usedIndex == UInt16(3 * requests))
        #expect(block.counters.mergedWrites.load(ordering: .relaxed) == (requests - 1) + 3 + 2, "a flush ends a merged run")
    }

    @Test func headerAndDataMayShareADescriptor() throws {
        var (driver, path) = try makeDriver()
        try writeHeader(driver, type: 1, sector: 2)
        let bytes = pattern(512, seed: 9)
        try driver.memory.write(bytes, at: GuestAddress(Self.header + 16))
        try driver.submit([(Self.header, 16 + 512, false), (Self.status, 1, true)], indirect: true)
        driver.notify()
        #expect(try statusByte(driver) == 0)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(file[1024..<1536]) == bytes)
    }

    @Test func requestsPastTheEndOrNotInSectorsFail() throws {
        var (driver, _) = try makeDriver(sectors: 16)
        #expect(try write(&driver, pattern(1024, seed: 1), sector: 15) == 1, "runs past the end")
        #expect(try write(&driver, pattern(512, seed: 1), sector: UInt64.max) == 1, "sector overflows")
        #expect(try write(&driver, pattern(100, seed: 1), sector: 0) == 1, "not whole sectors")
        #expect(try read(&driver, count: 512, sector: 16).0 == 1)
        #expect(try write(&driver, pattern(512, seed: 1), sector: 15) == 0, "the last sector is fine")
    }

    /// Only writes that continue one another merge: a gap, a write past the end or a read ends
    /// the run, and each request still gets its own status.
    @Test func onlyConsecutiveWellFormedWritesMerge() throws {
        let path = directory.path("merge-\(UUID().uuidString).img")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: 64 * 512)
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: false), identifier: "merge")
        var driver = try VirtioTestDriver(backend: block, queueSize: 32)
        func header(_ index: Int) -> UInt64 { Self.header + 0x20 * UInt64(index) }
        func status(_ index: Int) -> UInt64 { Self.status + UInt64(index) }
        func data(_ index: Int) -> UInt64 { VirtioTestDriver.bufferBase + 0x10000 * UInt64(index + 1) }
        // (type, sector, sectors): two that merge, one past a gap, one past the end, a read, two that merge.
        let requests: [(UInt32, UInt64, Int)] = [(1, 0, 2), (1, 2, 2), (1, 8, 2), (1, 63, 2), (0, 0, 2), (1, 20, 1), (1, 21, 1)]
        for (index, request) in requests.enumerated() {
            var bytes = withUnsafeBytes(of: request.0.littleEndian, Array.init) + [0, 0, 0, 0]
            bytes += withUnsafeBytes(of: request.1.littleEndian, Array.init)
            try driver.memory.write(bytes, at: GuestAddress(header(index)))
            try driver.memory.write([0xff], at: GuestAddress(status(index)))
            try driver.memory.write(pattern(512 * request.2, seed: UInt8(index + 1)), at: GuestAddress(data(index)))
            try driver.submit([(header(index), 16, false), (data(index), UInt32(512 * request.2), request.0 == 0), (status(index), 1, true)])
        }
        driver.notify()
        let statuses = try requests.indices.map { try driver.memory.read(count: 1, at: GuestAddress(status($0)))[0] }
        #expect(statuses == [0, 0, 0, 1, 0, 0, 0])
        #expect(block.counters.mergedWrites.load(ordering: .relaxed) == 2)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        for (index, request) in requests.enumerated() where request.0 == 1 && statuses[index] == 0 {
            let start = Int(request.1) * 512
            #expect(Array(file[start..<(start + 512 * request.2)]) == pattern(512 * request.2, seed: UInt8(index + 1)), "request \(index)")
        }
        #expect(try driver.memory.read(count: 1024, at: GuestAddress(data(4))) == pattern(1024, seed: 1), "the read saw the merged write before it")
    }

    @Test func aReadOnlyDiskRefusesWritesAndSaysSo() throws {
        var (driver, path) = try makeDriver(readOnly: true)
        #expect(driver.offeredFeatures & (1 << 5) != 0, "VIRTIO_BLK_F_RO")
        #expect(driver.offeredFeatures & (1 << 13) == 0, "no DISCARD on a read-only disk")
        #expect(try write(&driver, pattern(512, seed: 1), sector: 0) == 1)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).allSatisfy { $0 == 0 })
        #expect(try read(&driver, count: 512, sector: 0).0 == 0)
    }

    @Test func flushGetIDAndUnknownTypes() throws {
        var (driver, _) = try makeDriver(id: "serial-1234")
        try writeHeader(driver, type: 4, sector: 0)
        try driver.submit([(Self.header, 16, false), (Self.status, 1, true)])
        driver.notify()
        #expect(try statusByte(driver) == 0)
        try writeHeader(driver, type: 8, sector: 0)
        try driver.submit([(Self.header, 16, false), (Self.data, 20, true), (Self.status, 1, true)])
        driver.notify()
        #expect(try statusByte(driver) == 0)
        #expect(try driver.memory.read(count: 20, at: GuestAddress(Self.data)) == Array("serial-1234".utf8) + [UInt8](repeating: 0, count: 9))
        try writeHeader(driver, type: 99, sector: 0)
        try driver.submit([(Self.header, 16, false), (Self.status, 1, true)])
        driver.notify()
        #expect(try statusByte(driver) == 2, "UNSUPP")
    }

    @Test func discardAndWriteZeroesLeaveHoles() throws {
        var (driver, path) = try makeDriver(sectors: 4096)
        let megabyte = pattern(1 << 20, seed: 5)
        #expect(try write(&driver, Array(megabyte[0..<(64 << 10)]), sector: 0) == 0)
        #expect(try write(&driver, Array(megabyte[0..<(64 << 10)]), sector: 256) == 0)
        for (type, sector) in [(UInt32(11), UInt64(0)), (13, 256)] {
            try writeHeader(driver, type: type, sector: 0)
            var range = withUnsafeBytes(of: sector.littleEndian, Array.init)
            range += withUnsafeBytes(of: UInt32(128).littleEndian, Array.init) + [0, 0, 0, 0]
            try driver.memory.write(range, at: GuestAddress(Self.data))
            try driver.submit([(Self.header, 16, false), (Self.data, 16, false), (Self.status, 1, true)])
            driver.notify()
            #expect(try statusByte(driver) == 0)
        }
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(file[0..<(64 << 10)].allSatisfy { $0 == 0 })
        #expect(file[(128 << 10)..<(192 << 10)].allSatisfy { $0 == 0 })
        #expect(FileStatus(path: path)!.sizeInBytes == 4096 * 512, "the image keeps its length")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_blocks == 0, "nothing stays allocated")
        // A range past the end is refused.
        try writeHeader(driver, type: 11, sector: 0)
        var range = withUnsafeBytes(of: UInt64(4090).littleEndian, Array.init)
        range += withUnsafeBytes(of: UInt32(100).littleEndian, Array.init) + [0, 0, 0, 0]
        try driver.memory.write(range, at: GuestAddress(Self.data))
        try driver.submit([(Self.header, 16, false), (Self.data, 16, false), (Self.status, 1, true)])
        driver.notify()
        #expect(try statusByte(driver) == 1)
        // Flags: WRITE_ZEROES may ask to unmap; DISCARD takes none; unknown ones are UNSUPP (spec 5.2.6.2).
        for (type, flags, status) in [(UInt32(13), UInt32(1), UInt8(0)), (13, 2, 2), (11, 1, 2), (11, 0x8000_0000, 2)] {
            try writeHeader(driver, type: type, sector: 0)
            var range = withUnsafeBytes(of: UInt64(8).littleEndian, Array.init)
            range += withUnsafeBytes(of: UInt32(8).littleEndian, Array.init) + withUnsafeBytes(of: flags.littleEndian, Array.init)
            try driver.memory.write(range, at: GuestAddress(Self.data))
            try driver.submit([(Self.header, 16, false), (Self.data, 16, false), (Self.status, 1, true)])
            driver.notify()
            #expect(try statusByte(driver) == status, "type \(type) flags \(flags)")
        }
    }

    @Test func chainsWithoutRoomForAStatusAreCountedNotServed() throws {
        var (driver, path) = try makeDriver()
        try writeHeader(driver, type: 1, sector: 0)
        try driver.memory.write(pattern(512, seed: 2), at: GuestAddress(Self.data))
        try driver.submit([(Self.header, 16, false), (Self.data, 512, false)])
        driver.notify()
        #expect(try driver.usedEntry(0).length == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).allSatisfy { $0 == 0 })
        try driver.submit([(Self.header, 8, false), (Self.status, 1, true)])
        driver.notify()
        #expect(try statusByte(driver) == 1, "a short header is IOERR")
    }

    /// A limited disk takes what its buckets can pay for and leaves the rest on the ring,
    /// untouched, until they refill (time is the test's clock); a new limit applies at once.
    @Test func aRateLimitedDiskServesRequestsAsTheBucketsRefill() throws {
        let path = directory.path("limited-\(UUID().uuidString).img")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: 1 << 20)
        let clock = VirtioBalloonTests.TestClock()
        let limit = DiskRateLimit(bandwidth: RateLimit(rate: 8192, burst: 16384), operations: RateLimit(rate: 2, burst: 3))
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: false), identifier: "limited", rateLimit: limit, clock: clock.read)
        var driver = try VirtioTestDriver(backend: block, queueSize: 16)
        let bytes = pattern(4096, seed: 9)
        // Operations: a burst of 3, then 2 per second.
        for index in 0..<3 { #expect(try write(&driver, bytes, sector: UInt64(8 * index)) == 0) }
        #expect(try write(&driver, bytes, sector: 24) == 0xff, "the fourth request waits")
        #expect(driver.usedIndex == 3 && block.counters.throttled.load(ordering: .relaxed) == 1)
        #expect(block.throttledUntil == clock.read() + 500_000_000, "one operation comes back in half a second")
        clock.now.add(499_999_999, ordering: .relaxed)
        driver.device.serveQueue(0)
        #expect(driver.usedIndex == 3, "not before")
        clock.now.add(1, ordering: .relaxed)
        driver.device.serveQueue(0)
        let fourth = try statusByte(driver)
        #expect(driver.usedIndex == 4 && fourth == 0 && block.throttledUntil == nil)
        // Bandwidth: 16 KiB were moved, so a 12 KiB write waits for 12 KiB at 8 KiB/s.
        clock.now.add(10_000_000_000, ordering: .relaxed)
        #expect(try write(&driver, pattern(16384, seed: 1), sector: 64) == 0, "a full bucket pays its burst")
        #expect(try write(&driver, pattern(12288, seed: 2), sector: 96) == 0xff)
        #expect(block.throttledUntil == clock.read() + 1_500_000_000)
        // Lifting the limit serves the waiting request on the next pass.
        block.setRateLimit(nil)
        driver.device.serveQueue(0)
        let waited = try statusByte(driver)
        #expect(driver.usedIndex == 6 && waited == 0)
        #expect(block.diskConfiguration.rateLimit == nil)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(file[(96 * 512)..<(96 * 512 + 12288)]) == pattern(12288, seed: 2), "the request that waited landed intact")
    }

    /// A request the guest made before a malformed chain in the same batch is still done and
    /// returned; only then does the queue break.
    @Test func requestsTakenBeforeAMalformedChainAreStillServed() throws {
        var (driver, path) = try makeDriver()
        let bytes = pattern(512, seed: 5)
        try writeHeader(driver, type: 1, sector: 4)
        try driver.memory.write(bytes, at: GuestAddress(Self.data))
        try driver.submit([(Self.header, 16, false), (Self.data, 512, false), (Self.status, 1, true)])
        try driver.makeAvailable(200)  // no such descriptor in a ring of 16
        driver.notify()
        let status = try statusByte(driver)
        #expect(driver.usedIndex == 1 && status == 0, "the write before the bad chain was returned done")
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(file[2048..<2560]) == bytes)
        #expect(driver.status & VirtioStatus.needsReset != 0 && driver.device.brokenQueueCount == 1)
    }

    /// A guest that keeps its ring full (its avail index always a ring ahead of the used index)
    /// gets a bounded share per service: the I/O thread, which every device shares, and the
    /// device's lock, which the control API takes, come back in between. (The driver refills its
    /// ring from the device's clock, read once per request taken, so it is always a ring ahead.)
    @Test func aRingKeptFullIsServedInBoundedTurns() throws {
        final class Refiller: Sendable {
            let state = Mutex<(refills: Int, memory: GuestMemoryMap?)>((0, nil))
            func refill() -> UInt64 {
                state.withLock { state in
                    guard state.refills < 2000, let memory = state.memory else { return }
                    state.refills += 1  // one per chain the device took: a ring ahead of it
                    let ahead = UInt16(truncatingIfNeeded: state.refills) &+ 16
                    try? memory.write([UInt8(ahead & 0xff), UInt8(ahead >> 8)], at: GuestAddress(VirtioTestDriver.availableRing + 2))
                }
                return 0
            }
        }
        let refiller = Refiller()
        let path = directory.path("full-\(UUID().uuidString).img")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: 1 << 20)
        let unlimited = DiskRateLimit(operations: RateLimit(rate: 1 << 40, burst: 1 << 40))
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: false), identifier: "full", rateLimit: unlimited, clock: refiller.refill)
        var driver = try VirtioTestDriver(backend: block, queueSize: 16)
        try writeHeader(driver, type: 8, sector: 0)  // GET_ID: cheap, and always the same chain
        let head = try driver.submit([(Self.header, 16, false), (Self.data, 20, true), (Self.status, 1, true)])
        for _ in 1..<16 { try driver.makeAvailable(head) }
        refiller.state.withLock { $0.memory = driver.memory }
        driver.device.serveQueue(0)
        // Four rounds (the transport's turn) of at most a ring each.
        #expect(Int(driver.usedIndex) <= 4 * 16, "served \(driver.usedIndex) requests in one turn")
        #expect(driver.usedIndex >= 16 && driver.status & VirtioStatus.needsReset == 0)
    }

    /// A limit changed while requests wait on the ring has the queue served again: the guest
    /// sends no new notification for requests it made long ago.
    @Test func changingTheLimitOfAThrottledDiskServesItsQueueAgain() throws {
        let path = directory.path("relimit-\(UUID().uuidString).img")
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        try FileHandle(forWritingAtPath: path)!.truncate(atOffset: 1 << 20)
        let clock = VirtioBalloonTests.TestClock()
        let limit = DiskRateLimit(bandwidth: nil, operations: RateLimit(rate: 1, burst: 1))
        let block = try VirtioBlock(disk: try DiskFile(path: path, readOnly: false), identifier: "relimit", rateLimit: limit, clock: clock.read)
        var driver = try VirtioTestDriver(backend: block, queueSize: 16)
        #expect(try write(&driver, pattern(512, seed: 1), sector: 0) == 0)
        #expect(try write(&driver, pattern(512, seed: 2), sector: 8) == 0xff, "the second request waits a second")
        let notifier = driver.device.queueNotifiers[0].rawValue
        #expect(!Poll.isReadable(notifier, milliseconds: 0))
        driver.device.reconfigure { ($0 as? VirtioBlock)?.setRateLimit(nil) }
        #expect(Poll.isReadable(notifier, milliseconds: 0), "the I/O thread is told to look at the queue")
        driver.device.serveQueue(0)
        let status = try statusByte(driver)
        #expect(driver.usedIndex == 2 && status == 0)
    }

    @Test func tokenBucketsPayWholeCostsOrSayWhen() {
        var bucket = TokenBucket(rate: 1000, burst: 100, now: 0)
        let paid = [bucket.consume(60, now: 0), bucket.consume(60, now: 0)]
        #expect(paid == [true, false], "nothing is taken from a bucket that cannot pay")
        let ready = bucket.readyTime(for: 60, now: 0)
        #expect(ready == 20_000_000)
        let paidLater = bucket.consume(60, now: 20_000_000)
        #expect(paidLater)
        let large = bucket.readyTime(for: 500, now: 20_000_000)
        #expect(large == 120_000_000, "a cost past the burst waits for a full bucket")
        let largePaid = [bucket.consume(500, now: 119_000_000), bucket.consume(500, now: 120_000_000)]
        #expect(largePaid == [false, true])
        let left = bucket.available(now: 120_000_000)
        #expect(left == 0)
        // Rates and bursts come from users and files: the largest ones saturate, never trap.
        var huge = TokenBucket(rate: 1, burst: .max, now: 0)
        let all = huge.consume(.max, now: 0)
        #expect(all)
        let never = huge.readyTime(for: .max, now: 1)
        #expect(never == .max)
        let refilled = huge.available(now: .max)
        #expect(refilled > 0)
    }

    @Test func diskAndRngOptionsParseOrSayWhatIsExpected() throws {
        #expect(try DiskConfiguration.parse("/d.img,readonly,id=abc") == DiskConfiguration(path: "/d.img", readOnly: true, identifier: "abc"))
        #expect(try DiskConfiguration.parse("/d.img") == DiskConfiguration(path: "/d.img"))
        #expect(
            try DiskConfiguration.parse("/d.img,bandwidth=1000000,iops=50,iops_burst=10")
                == DiskConfiguration(path: "/d.img", rateLimit: DiskRateLimit(bandwidth: RateLimit(rate: 1_000_000, burst: 1_000_000), operations: RateLimit(rate: 50, burst: 10))))
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse("/d.img,iops=0") }
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse("/d.img,bandwidth_burst=10") }
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse("/d.img,iops=5,iops=6") }
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse("/d.img,id=123456789012345678901") }
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse(",readonly") }
        #expect(throws: DeviceError.self) { try DiskConfiguration.parse("/d.img,writeback") }
        #expect(try EntropyConfiguration.parse("rate=100,burst=10") == EntropyConfiguration(rate: 100, burst: 10))
        #expect(try EntropyConfiguration.parse("on") == EntropyConfiguration())
        #expect(throws: DeviceError.self) { try EntropyConfiguration.parse("rate=0") }
        do { _ = try DiskConfiguration.parse("/d.img,bogus") } catch {
            #expect(
                error.description
                    == "--disk \"/d.img,bogus\": expected PATH[,readonly][,id=NAME][,bandwidth=BYTES_PER_S[,bandwidth_burst=BYTES]][,iops=REQUESTS_PER_S[,iops_burst=N]] (NAME at most 20 bytes, limits at least 1)")
        }
    }
}

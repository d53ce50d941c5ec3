import GuestMemory
import LinuxSystem

/// A virtio-blk device over a raw disk image: reads and writes go straight between guest buffers
/// and the file with preadv/pwritev, FLUSH is fdatasync, DISCARD and WRITE_ZEROES punch holes so
/// the image stays sparse, GET_ID returns the disk's id. A read-only disk refuses every change
/// with IOERR.
///
/// Requests are taken in batches of what the driver made available. A batch of reads large
/// enough to be worth it is copied by helper threads and the I/O thread together (on a
/// page-cached image the copy is the cost, and one thread copies at one core's speed). Anything
/// else runs in order, writes to consecutive sectors merged into one pwritev, as QEMU's request
/// merging does: a file system takes one large write faster than many (and parallel writers of
/// one file only queue on its inode lock). Every request of a batch finishes before `serve`
/// returns, so nothing is in flight between batches, as snapshots and pauses expect.
///
/// An optional rate limit (bandwidth and operations) is paid as requests are taken: a request
/// the buckets cannot pay for yet goes back to the ring untouched, and the I/O thread serves
/// the queue again when they can.
package final class VirtioBlock: VirtioBackend, @unchecked Sendable {
    package static let sectorSize = 512
    /// Queue size offered; a chain holds the header, up to `segmentMaximum` data buffers and the status.
    static let queueSize: UInt16 = 256
    static let segmentMaximum = UInt32(queueSize) - 2
    /// DISCARD and WRITE_ZEROES: ranges per request, sectors per range.
    static let rangesMaximum: UInt32 = 16
    static let rangeSectorsMaximum: UInt32 = 1 << 22

    package private(set) var disk: DiskFile
    /// What GET_ID returns (at most 20 bytes).
    package let identifier: [UInt8]
    /// The same, as given.
    package let identifierText: String
    package private(set) var capacitySectors: UInt64
    /// One slot per request of a batch, each with its own chain, scatter list and scratch, so
    /// helper threads work on different slots at once.
    private let slots: [BlockRequestSlot]
    private var workers: BatchWorkers?
    private var memory: GuestMemoryMap?
    private var configuration: [UInt8] = []
    package let counters: BlockCounters
    package private(set) var rateLimit: DiskRateLimit?
    private var limiter: DiskLimiter
    private var waitingUntil: UInt64?
    private let clock: @Sendable () -> UInt64
    /// Requests per batch.
    static let batchLimit = 64
    /// A batch is shared out when it moves at least this many bytes (smaller ones cost more to hand over than to copy).
    static let parallelBytes = 256 << 10
    /// Consecutive writes merged into one call: at most this many guest ranges (IOV_MAX) and bytes.
    static let mergeSegments = 1024
    static let mergeBytes = 32 << 20
    private let mergeVectors = GuestIOVectors(capacity: VirtioBlock.mergeSegments)

    package init(
        disk: DiskFile, identifier: String, rateLimit: DiskRateLimit? = nil, counters: BlockCounters = BlockCounters(),
        clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }
    ) throws(SystemError) {
        self.disk = disk
        self.rateLimit = rateLimit?.isEmpty == true ? nil : rateLimit
        self.clock = clock
        limiter = DiskLimiter(rateLimit, now: clock())
        self.identifier = Array(identifier.utf8.prefix(20))
        identifierText = identifier
        capacitySectors = try disk.sizeInBytes() / UInt64(Self.sectorSize)
        slots = (0..<Self.batchLimit).map { _ in BlockRequestSlot(capacity: Int(Self.queueSize), scratch: 16 * Int(Self.rangesMaximum)) }
        self.counters = counters
        configuration = makeConfiguration()
    }

    /// Starts `helpers` threads that share large batches with the I/O thread (0: none).
    package func startHelpers(_ helpers: Int, name: String) throws(SystemError) {
        guard helpers > 0 else { return }
        workers = try BatchWorkers(helpers: helpers, name: name) { [unowned self] index in
            guard let memory else { return }
            slots[index].written = handleRequest(slots[index], memory: memory)
        }
    }

    /// Serves `file` from now on (the VM is paused): its size becomes the capacity the driver sees.
    package func replaceDisk(_ file: DiskFile) throws(SystemError) {
        capacitySectors = try file.sizeInBytes() / UInt64(Self.sectorSize)
        disk = file
        configuration = makeConfiguration()
    }

    /// Makes every write the guest completed durable (fdatasync), before a snapshot or a
    /// migration takes the state: a restore or a destination then reads the image as the guest
    /// left it, even after a host crash or from storage another host mounts.
    package func syncImage() throws(SystemError) {
        try disk.syncData()
        counters.imageSyncs.add(1, ordering: .relaxed)
    }

    /// Limits the disk from now on (nil: no limit); the buckets start full.
    package func setRateLimit(_ limit: DiskRateLimit?) {
        rateLimit = limit?.isEmpty == true ? nil : limit
        limiter = DiskLimiter(rateLimit, now: clock())
        waitingUntil = nil
    }

    package var throttledUntil: UInt64? { waitingUntil }

    /// A reset drops the pending wait with the rest: no queue is left to serve at its deadline.
    package func reset() { waitingUntil = nil }

    /// Live update: the open image stays open across exec, so the new process serves the very
    /// same file even if its path was renamed or unlinked meanwhile.
    package func handOver() -> VirtioHandover? {
        VirtioHandover(descriptors: [.init(name: Self.diskDescriptorName, descriptor: disk.descriptor.rawValue)])
    }

    /// The name the image's descriptor is kept under.
    package static let diskDescriptorName = "disk"

    /// The disk as a configuration (what a snapshot saves and a restore reopens).
    package var diskConfiguration: DiskConfiguration {
        DiskConfiguration(path: disk.path, readOnly: disk.isReadOnly, identifier: identifierText, rateLimit: rateLimit)
    }

    package var deviceType: VirtioDeviceType { .block }
    package var queueMaximumSizes: [UInt16] { [Self.queueSize] }

    package var deviceFeatures: UInt64 {
        var features = BlockFeature.segmentMaximum | BlockFeature.blockSize | BlockFeature.flush
        features |= disk.isReadOnly ? BlockFeature.readOnly : BlockFeature.discard | BlockFeature.writeZeroes
        return features
    }

    package func configurationByte(at offset: Int) -> UInt8? {
        offset >= 0 && offset < configuration.count ? configuration[offset] : nil
    }

    /// struct virtio_blk_config: capacity, seg_max, blk_size, and the discard and write-zeroes limits.
    private func makeConfiguration() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 60)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for index in 0..<MemoryLayout<T>.size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        put(capacitySectors, at: 0)
        put(Self.segmentMaximum, at: 12)
        put(UInt32(Self.sectorSize), at: 20)
        put(UInt16(1), at: 34)  // num_queues
        put(Self.rangeSectorsMaximum, at: 36)  // max_discard_sectors
        put(Self.rangesMaximum, at: 40)  // max_discard_seg
        put(UInt32(1), at: 44)  // discard_sector_alignment
        put(Self.rangeSectorsMaximum, at: 48)  // max_write_zeroes_sectors
        put(Self.rangesMaximum, at: 52)  // max_write_zeroes_seg
        bytes[56] = 1  // write_zeroes_may_unmap
        return bytes
    }

    /// Serves at most a ring's worth of requests per call, so a guest that keeps its ring full
    /// cannot hold the device's lock (and the I/O thread every device shares): the transport
    /// comes back for the rest after the other devices' turns.
    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        waitingUntil = nil
        var served = false
        var taken = 0
        while waitingUntil == nil, taken < Int(queue.size) {
            var count = 0, bytes = 0, onlyReads = true
            // A malformed chain breaks the queue, but the requests taken before it are still
            // done and returned: the guest made them, and may have waited on them.
            var broken: VirtqueueError?
            while count < slots.count, taken + count < Int(queue.size) {
                do throws(VirtqueueError) {
                    guard try queue.pop(into: &slots[count].chain, memory: memory) else { break }
                } catch {
                    broken = error
                    break
                }
                let slot = slots[count]
                readHeader(slot, memory: memory)
                if rateLimit != nil, let ready = limiter.admit(bytes: UInt64(transferBytes(slot)), now: clock()) {
                    queue.undoPop()  // it waits on the ring, untouched
                    waitingUntil = ready
                    counters.throttled.add(1, ordering: .relaxed)
                    break
                }
                bytes += slot.chain.readableBytes + slot.chain.writableBytes
                onlyReads = onlyReads && slot.type == BlockRequestType.read
                count += 1
            }
            guard count > 0 else {
                if let broken { throw broken }
                return served
            }
            taken += count
            if let workers, count > 1, onlyReads, bytes >= Self.parallelBytes {
                self.memory = memory
                workers.run(count: count)
            } else {
                // FLUSH and the rest run in order: a flush covers the writes completed before it.
                runInOrder(count, memory: memory)
            }
            for slot in slots.prefix(count) { queue.stageUsed(head: slot.chain.head, length: slot.written) }
            queue.publishUsed()
            served = true
            if let broken { throw broken }
        }
        return served
    }

    /// Reads the type and sector of the slot's request (type nil when the chain has no room for a header and a status).
    private func readHeader(_ slot: BlockRequestSlot, memory: GuestMemoryMap) {
        slot.type = nil
        guard slot.chain.readableBytes >= 16, slot.chain.writableBytes >= 1,
              (try? slot.chain.copyReadable(from: 0, count: 16, into: &slot.scratch, at: 0, memory: memory)) != nil
        else { return }
        slot.type = Self.load(UInt32.self, slot.scratch, 0)
        slot.sector = Self.load(UInt64.self, slot.scratch, 8)
    }

    /// The data bytes a READ or WRITE moves (what the bandwidth bucket charges); 0 for the rest.
    private func transferBytes(_ slot: BlockRequestSlot) -> Int {
        switch slot.type {
        case BlockRequestType.read: slot.chain.writableBytes - 1
        case BlockRequestType.write: slot.chain.readableBytes - 16
        default: 0
        }
    }

    /// Serves the first `count` slots in order, each run of writes to consecutive sectors with one call.
    private func runInOrder(_ count: Int, memory: GuestMemoryMap) {
        var index = 0
        while index < count {
            let run = mergeableWrites(from: index, below: count)
            if run > 1, writeMerged(slots[index..<(index + run)], memory: memory) {
                index += run
                continue
            }
            slots[index].written = handleRequest(slots[index], memory: memory)
            index += 1
        }
    }

    /// How many slots from `first` are well-formed writes, each starting where the one before
    /// ended, within the merge limits (1 when the first is not one or stands alone).
    private func mergeableWrites(from first: Int, below count: Int) -> Int {
        guard !disk.isReadOnly else { return 1 }
        var run = 0, bytes = 0, segments = 0
        var next = slots[first].sector
        while first + run < count {
            let slot = slots[first + run]
            let length = slot.chain.readableBytes - 16
            guard slot.type == BlockRequestType.write, slot.sector == next, length > 0, length % Self.sectorSize == 0,
                  fits(sector: slot.sector, sectors: UInt64(length / Self.sectorSize)),
                  bytes + length <= Self.mergeBytes, segments + slot.chain.count <= Self.mergeSegments
            else { break }
            bytes += length
            segments += slot.chain.count
            next = slot.sector + UInt64(length / Self.sectorSize)
            run += 1
        }
        return max(run, 1)
    }

    /// Writes the run's data with one pwritev and completes each request; false (nothing
    /// completed) when it could not, and the requests are then served one by one.
    private func writeMerged(_ run: ArraySlice<BlockRequestSlot>, memory: GuestMemoryMap) -> Bool {
        mergeVectors.removeAll()
        var total = 0
        for slot in run {
            let length = slot.chain.readableBytes - 16
            guard (try? slot.chain.list(writable: false, from: 16, count: length, in: mergeVectors, appending: true, memory: memory)) == true
            else { return false }
            total += length
        }
        let offset = run.first!.sector * UInt64(Self.sectorSize)
        guard (try? mergeVectors.write(to: disk.descriptor.rawValue, at: offset, subject: disk.path)) == total else { return false }
        counters.writtenBytes.add(total, ordering: .relaxed)
        counters.mergedWrites.add(run.count - 1, ordering: .relaxed)
        for slot in run { slot.written = complete(slot, status: BlockStatus.ok, dataWritten: 0, memory: memory) }
        return true
    }

    /// Serves the chain in `slot`; returns the bytes written into its writable buffers.
    private func handleRequest(_ slot: BlockRequestSlot, memory: GuestMemoryMap) -> UInt32 {
        guard slot.chain.writableBytes >= 1 else {
            counters.malformed.add(1, ordering: .relaxed)
            return 0  // no status byte to answer in
        }
        guard slot.chain.readableBytes >= 16 else {
            counters.malformed.add(1, ordering: .relaxed)
            return complete(slot, status: BlockStatus.ioError, dataWritten: 0, memory: memory)
        }
        let (status, dataWritten) = execute(slot, memory: memory)
        return complete(slot, status: status, dataWritten: dataWritten, memory: memory)
    }

    /// Writes the status byte of the slot's request; the bytes written into its writable buffers.
    private func complete(_ slot: BlockRequestSlot, status: UInt8, dataWritten: Int, memory: GuestMemoryMap) -> UInt32 {
        if status != BlockStatus.ok { counters.failed.add(1, ordering: .relaxed) }
        slot.scratch[0] = status
        // The status buffer was checked to be guest RAM when the chain was taken.
        try? slot.chain.copyToWritable(slot.scratch, from: 0, count: 1, at: slot.chain.writableBytes - 1, memory: memory)
        return UInt32(dataWritten + 1)
    }

    /// Executes the slot's request; the status and the data bytes written into guest buffers.
    private func execute(_ slot: BlockRequestSlot, memory: GuestMemoryMap) -> (UInt8, Int) {
        // The header as read when the request was taken (a driver rewriting it since changes nothing).
        guard let type = slot.type else { return (BlockStatus.ioError, 0) }
        let sector = slot.sector
        let readable = slot.chain.readableBytes - 16
        let writable = slot.chain.writableBytes - 1
        switch type {
        case BlockRequestType.read:
            return (transfer(slot, sector: sector, count: writable, write: false, memory: memory), writable)
        case BlockRequestType.write:
            return (transfer(slot, sector: sector, count: readable, write: true, memory: memory), 0)
        case BlockRequestType.flush:
            counters.flushes.add(1, ordering: .relaxed)
            do { try disk.syncData() } catch { return (BlockStatus.ioError, 0) }
            return (BlockStatus.ok, 0)
        case BlockRequestType.getID:
            let count = min(writable, 20)
            for index in 0..<count { slot.scratch[index] = index < identifier.count ? identifier[index] : 0 }
            guard (try? slot.chain.copyToWritable(slot.scratch, from: 0, count: count, at: 0, memory: memory)) != nil else { return (BlockStatus.ioError, 0) }
            return (BlockStatus.ok, count)
        case BlockRequestType.discard, BlockRequestType.writeZeroes:
            return (punch(slot, ranges: readable, memory: memory), 0)
        default:
            return (BlockStatus.unsupported, 0)
        }
    }

    /// A read or write of `count` bytes at `sector`, straight between the chain's data buffers and the disk.
    private func transfer(_ slot: BlockRequestSlot, sector: UInt64, count: Int, write: Bool, memory: GuestMemoryMap) -> UInt8 {
        if write, disk.isReadOnly { return BlockStatus.ioError }
        guard count % Self.sectorSize == 0, fits(sector: sector, sectors: UInt64(count / Self.sectorSize)) else { return BlockStatus.ioError }
        guard count > 0 else { return BlockStatus.ok }
        let vectors = slot.vectors
        do {
            guard try slot.chain.list(writable: !write, from: write ? 16 : 0, count: count, in: vectors, memory: memory) else { return BlockStatus.ioError }
        } catch { return BlockStatus.ioError }
        let offset = sector * UInt64(Self.sectorSize)
        do {
            let moved = write
                ? try vectors.write(to: disk.descriptor.rawValue, at: offset, subject: disk.path)
                : try vectors.read(from: disk.descriptor.rawValue, at: offset, subject: disk.path)
            guard moved == count else { return BlockStatus.ioError }
        } catch { return BlockStatus.ioError }
        if write { counters.writtenBytes.add(count, ordering: .relaxed) } else { counters.readBytes.add(count, ordering: .relaxed) }
        return BlockStatus.ok
    }

    /// DISCARD or WRITE_ZEROES: each 16-byte range (sector, sectors, flags) becomes a hole.
    private func punch(_ slot: BlockRequestSlot, ranges bytes: Int, memory: GuestMemoryMap) -> UInt8 {
        if disk.isReadOnly { return BlockStatus.ioError }
        guard bytes > 0, bytes % 16 == 0, bytes / 16 <= Int(Self.rangesMaximum) else { return BlockStatus.ioError }
        guard (try? slot.chain.copyReadable(from: 16, count: bytes, into: &slot.scratch, at: 0, memory: memory)) != nil else { return BlockStatus.ioError }
        // Flags: WRITE_ZEROES may ask to unmap (it always does here); DISCARD takes none (spec 5.2.6.2).
        let allowedFlags: UInt32 = slot.type == BlockRequestType.writeZeroes ? 1 : 0
        for range in 0..<(bytes / 16) {
            let sector = Self.load(UInt64.self, slot.scratch, 16 * range)
            let sectors = Self.load(UInt32.self, slot.scratch, 16 * range + 8)
            guard Self.load(UInt32.self, slot.scratch, 16 * range + 12) & ~allowedFlags == 0 else { return BlockStatus.unsupported }
            guard sectors <= Self.rangeSectorsMaximum, fits(sector: sector, sectors: UInt64(sectors)) else { return BlockStatus.ioError }
        }
        for range in 0..<(bytes / 16) {
            let sector = Self.load(UInt64.self, slot.scratch, 16 * range)
            let sectors = Self.load(UInt32.self, slot.scratch, 16 * range + 8)
            guard sectors > 0 else { continue }
            do {
                try disk.punchHole(at: sector * UInt64(Self.sectorSize), length: UInt64(sectors) * UInt64(Self.sectorSize))
            } catch { return BlockStatus.ioError }
        }
        counters.discards.add(1, ordering: .relaxed)
        return BlockStatus.ok
    }

    private func fits(sector: UInt64, sectors: UInt64) -> Bool {
        let (end, overflow) = sector.addingReportingOverflow(sectors)
        return !overflow && end <= capacitySectors
    }

    private static func load<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + index]) << (8 * index) }
        return value
    }
}

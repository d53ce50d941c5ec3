import GuestMemory
import LinuxSystem

/// A virtio-balloon device (virtio 1.x, section 5.5). The host sets a target (`num_pages`); the
/// guest's driver gives that many pages up on the inflate queue and takes them back on the
/// deflate queue, says how many it holds in `actual`, reports its memory statistics when asked,
/// and (with free page reporting) hands over ranges of memory it has freed. Pages given up or
/// reported go back to the host at once, through the `MemoryReclaimer`: they become holes in
/// the region's backing, so snapshots, page serving and migrations skip them as zero.
///
/// Queues are numbered as Linux numbers them: inflate, deflate, then statistics and reporting
/// only when negotiated. Statistics follow Firecracker: the device keeps the driver's buffer and
/// gives it back every interval, and the driver sends it again with fresh values.
package final class VirtioBalloon: VirtioBackend, @unchecked Sendable {
    static let queueSize: UInt16 = 256
    /// Page numbers are of 4 KiB pages, whatever the guest's page size (VIRTIO_BALLOON_PFN_SHIFT).
    static let pageShift: UInt64 = 12

    package enum Feature {
        package static let statisticsQueue: UInt64 = 1 << 1
        package static let deflateOnOOM: UInt64 = 1 << 2
        package static let pageReporting: UInt64 = 1 << 5
    }

    enum QueueRole { case inflate, deflate, statistics, reporting }

    private var settings: BalloonConfiguration
    /// Pages the driver says the balloon holds (the `actual` field it writes).
    package private(set) var actualPages: UInt32 = 0
    package private(set) var counters = BalloonCounters()
    package private(set) var statistics = BalloonStatistics()
    private var roles: [QueueRole] = []
    private var chain = DescriptorChain(capacity: Int(VirtioBalloon.queueSize))
    private var scratch = [UInt8](repeating: 0, count: 4096)
    /// The statistics buffer the device keeps until the next update is due.
    private var heldStatistics: UInt16?
    private var statisticsDue: UInt64?
    private var context: VirtioIOContext?
    private let reclaimer: MemoryReclaimer
    private let clock: @Sendable () -> UInt64

    package init(_ configuration: BalloonConfiguration, reclaimer: MemoryReclaimer, clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }) {
        settings = configuration
        self.reclaimer = reclaimer
        self.clock = clock
    }

    /// The configuration as it stands: the current target and statistics interval.
    package var configuration: BalloonConfiguration { settings }

    package var deviceType: VirtioDeviceType { .balloon }
    package var deviceFeatures: UInt64 {
        (settings.statisticsIntervalSeconds > 0 ? Feature.statisticsQueue : 0) | (settings.deflateOnOOM ? Feature.deflateOnOOM : 0)
            | (settings.freePageReporting ? Feature.pageReporting : 0)
    }
    package var queueMaximumSizes: [UInt16] {
        [UInt16](repeating: Self.queueSize, count: 2 + (settings.statisticsIntervalSeconds > 0 ? 1 : 0) + (settings.freePageReporting ? 1 : 0))
    }

    /// `num_pages` (the target) at 0, `actual` at 4, both 32-bit little-endian.
    package func configurationByte(at offset: Int) -> UInt8? {
        switch offset {
        case 0..<4: UInt8(truncatingIfNeeded: settings.targetPages >> (8 * UInt32(offset)))
        case 4..<8: UInt8(truncatingIfNeeded: actualPages >> (8 * UInt32(offset - 4)))
        default: nil
        }
    }

    /// Only `actual` is the driver's to write.
    package func writeConfiguration(_ byte: UInt8, at offset: Int) {
        guard (4..<8).contains(offset) else { return }
        let shift = 8 * UInt32(offset - 4)
        actualPages = actualPages & ~(0xff << shift) | UInt32(byte) << shift
    }

    package func activate(features: UInt64) {
        roles = [.inflate, .deflate]
        if features & Feature.statisticsQueue != 0 { roles.append(.statistics) }
        if features & Feature.pageReporting != 0 { roles.append(.reporting) }
    }

    package func reset() {
        roles = []
        heldStatistics = nil
        statisticsDue = nil
        actualPages = 0
    }

    package func attach(_ context: VirtioIOContext) { self.context = context }

    package var timerDeadline: UInt64? { heldStatistics == nil ? nil : statisticsDue }

    package func heldChains(queue index: Int) -> UInt16 {
        index < roles.count && roles[index] == .statistics && heldStatistics != nil ? 1 : 0
    }

    /// A restored device starts with the `actual` the driver last wrote.
    package func restoreActualPages(_ pages: UInt32) { actualPages = pages }

    /// Asks the guest for a new balloon size; the transport tells the driver (configuration change).
    package func setTarget(amountMiB: UInt32) { settings.amountMiB = amountMiB }

    /// Changes how often statistics are asked for; they must have been on from the start.
    package func setStatisticsInterval(seconds: UInt32) throws(BalloonError) {
        guard settings.statisticsIntervalSeconds > 0 else { throw .statisticsOff }
        guard seconds > 0 else { throw .statisticsCannotStop }
        settings.statisticsIntervalSeconds = seconds
        guard let index = roles.firstIndex(of: .statistics), let due = statisticsDue else { return }
        statisticsDue = min(due, clock() + UInt64(seconds) * 1_000_000_000)
        context?.wake(queue: index)  // the I/O thread recomputes its wait
    }

    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        guard index < roles.count else { return false }
        switch roles[index] {
        case .inflate: return try serveBalloonPages(&queue, memory: memory, inflate: true)
        case .deflate: return try serveBalloonPages(&queue, memory: memory, inflate: false)
        case .statistics: return try serveStatistics(&queue, memory: memory)
        case .reporting: return try serveReports(&queue, memory: memory)
        }
    }

    /// Each chain is an array of 32-bit page numbers. Inflated pages go back to the host, run by
    /// run; deflated ones need nothing (they read as zeros when the guest touches them again).
    private func serveBalloonPages(_ queue: inout Virtqueue, memory: GuestMemoryMap, inflate: Bool) throws(VirtqueueError) -> Bool {
        var served = false
        while try queue.pop(into: &chain, memory: memory) {
            let total = chain.readableBytes / 4
            var run: (first: UInt64, count: UInt64)? = nil
            var done = 0
            while done < total {
                let count = min(scratch.count / 4, total - done)
                guard (try? chain.copyReadable(from: done * 4, count: count * 4, into: &scratch, at: 0, memory: memory)) != nil else { break }
                for entry in 0..<count {
                    let page = UInt64(scratch[4 * entry]) | UInt64(scratch[4 * entry + 1]) << 8 | UInt64(scratch[4 * entry + 2]) << 16
                        | UInt64(scratch[4 * entry + 3]) << 24
                    if let current = run, current.first + current.count == page {
                        run = (current.first, current.count + 1)
                        continue
                    }
                    if let current = run, inflate { discardPages(current, memory: memory) }
                    run = (page, 1)
                }
                done += count
            }
            if let current = run, inflate { discardPages(current, memory: memory) }
            if inflate { counters.inflatedPages &+= UInt64(total) } else { counters.deflatedPages &+= UInt64(total) }
            queue.putUsed(head: chain.head, length: 0)
            served = true
        }
        return served
    }

    private func discardPages(_ run: (first: UInt64, count: UInt64), memory: GuestMemoryMap) {
        do {
            counters.discardedBytes &+= try reclaimer.discard(GuestAddress(run.first << Self.pageShift), length: run.count << Self.pageShift, in: memory)
        } catch {
            counters.invalidPages &+= run.count  // not guest RAM (or the backing refused): nothing to give back
        }
    }

    /// Keeps the driver's buffer (reading the statistics in it) until the interval has passed,
    /// then gives it back so the driver sends fresh ones.
    private func serveStatistics(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        var served = false
        let now = clock()
        if let held = heldStatistics, let due = statisticsDue, due <= now {
            queue.putUsed(head: held, length: 0)
            heldStatistics = nil
            statisticsDue = nil
            served = true
        }
        while try queue.pop(into: &chain, memory: memory) {
            if let held = heldStatistics {  // a driver that sent a second buffer gets the first back
                queue.putUsed(head: held, length: 0)
                served = true
            }
            let bytes = min(chain.readableBytes, scratch.count / BalloonStatistics.entryBytes * BalloonStatistics.entryBytes)
            if (try? chain.copyReadable(from: 0, count: bytes, into: &scratch, at: 0, memory: memory)) != nil {
                statistics.record(scratch, count: bytes)
            }
            heldStatistics = chain.head
            statisticsDue = now + UInt64(settings.statisticsIntervalSeconds) * 1_000_000_000
        }
        return served
    }

    /// Each descriptor of a report is a range of guest memory the driver freed: it goes back to
    /// the host, and the chain is returned (length 0) so the driver can use the pages again.
    private func serveReports(_ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        var served = false
        while try queue.pop(into: &chain, memory: memory) {
            for index in 0..<chain.count {
                let (address, length) = chain.segment(index)
                counters.reportedBytes &+= UInt64(length)
                do { counters.discardedBytes &+= try reclaimer.discard(address, length: UInt64(length), in: memory) } catch {
                    counters.invalidPages &+= UInt64(length) >> Self.pageShift
                }
            }
            counters.reports &+= 1
            queue.putUsed(head: chain.head, length: 0)
            served = true
        }
        return served
    }
}

/// What a balloon has done since it started.
package struct BalloonCounters: Sendable, Equatable {
    package var inflatedPages: UInt64 = 0
    package var deflatedPages: UInt64 = 0
    /// Free-page reports received, and the bytes they covered.
    package var reports: UInt64 = 0
    package var reportedBytes: UInt64 = 0
    /// Bytes given back to the host (inflated and reported, whole pages).
    package var discardedBytes: UInt64 = 0
    /// Pages named that are not guest RAM, ignored.
    package var invalidPages: UInt64 = 0
}

/// Why a balloon change was refused.
package enum BalloonError: Error, Equatable, CustomStringConvertible {
    case statisticsOff
    case statisticsCannotStop

    package var description: String {
        switch self {
        case .statisticsOff: "balloon statistics are off: they can only be turned on at start (--balloon ...,stats_interval_s=N)"
        case .statisticsCannotStop: "stats_polling_interval_s must be at least 1: statistics cannot be turned off once the VM runs"
        }
    }
}

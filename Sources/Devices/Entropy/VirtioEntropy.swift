import GuestMemory
import LinuxSystem

/// A virtio-rng device: fills each buffer the guest offers with bytes from getrandom(2), at most
/// as fast as its token bucket allows. When the budget runs out the request waits, and the I/O
/// thread comes back when it refills: the device sets the pace, not the guest.
package final class VirtioEntropy: VirtioBackend, @unchecked Sendable {
    static let queueSize: UInt16 = 64
    /// Largest piece copied per step (the scratch buffer's size).
    static let chunkBytes = 4096
    private var chain: DescriptorChain
    private var scratch = [UInt8](repeating: 0, count: VirtioEntropy.chunkBytes)
    private var bucket: TokenBucket
    private var waitingUntil: UInt64?
    private let clock: @Sendable () -> UInt64
    /// Bytes handed to the guest.
    package private(set) var bytesServed = 0

    /// A device giving at most `rate` bytes per second, in bursts of at most `burst`.
    package init(rate: UInt64, burst: UInt64, clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.nanoseconds() }) {
        chain = DescriptorChain(capacity: Int(Self.queueSize))
        self.clock = clock
        bucket = TokenBucket(rate: rate, burst: burst, now: clock())
    }

    /// The limit it applies.
    package var configuration: EntropyConfiguration { EntropyConfiguration(rate: bucket.rate, burst: bucket.burst) }

    package var deviceType: VirtioDeviceType { .entropy }
    package var deviceFeatures: UInt64 { 0 }
    package var queueMaximumSizes: [UInt16] { [Self.queueSize] }
    package func configurationByte(at offset: Int) -> UInt8? { nil }
    package var throttledUntil: UInt64? { waitingUntil }

    /// A reset drops the pending wait with the rest: no queue is left to serve at its deadline.
    package func reset() { waitingUntil = nil }

    package func serve(queue index: Int, _ queue: inout Virtqueue, memory: GuestMemoryMap) throws(VirtqueueError) -> Bool {
        waitingUntil = nil
        var served = false
        while try queue.hasAvailable() {
            let now = clock()
            // Nothing is taken off the ring until some budget is there, so no request waits half-served.
            guard bucket.available(now: now) > 0 else {
                waitingUntil = bucket.readyTime(for: 1, now: now)
                return served
            }
            guard try queue.pop(into: &chain, memory: memory) else { break }
            let wanted = UInt64(chain.writableBytes)
            let granted = Int(bucket.take(wanted, now: now))
            var done = 0
            while done < granted {
                let piece = min(Self.chunkBytes, granted - done)
                SystemRandom.fill(&scratch, at: 0, count: piece)
                guard (try? chain.copyToWritable(scratch, from: 0, count: piece, at: done, memory: memory)) != nil else { break }
                done += piece
            }
            bytesServed += done
            queue.putUsed(head: chain.head, length: UInt32(done))
            served = true
        }
        return served
    }
}

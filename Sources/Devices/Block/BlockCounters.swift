import Synchronization

/// What a block device has done, for GET /vm: read by the control thread while the I/O thread counts.
package final class BlockCounters: Sendable {
    package let readBytes = Atomic<Int>(0)
    package let writtenBytes = Atomic<Int>(0)
    package let flushes = Atomic<Int>(0)
    package let discards = Atomic<Int>(0)
    /// Requests answered with IOERR or UNSUPP.
    package let failed = Atomic<Int>(0)
    /// Chains too short to hold a header or a status byte.
    package let malformed = Atomic<Int>(0)
    /// Times a request had to wait for the disk's rate limit.
    package let throttled = Atomic<Int>(0)
    /// Writes that went out in one call with the write before them (consecutive sectors).
    package let mergedWrites = Atomic<Int>(0)
    /// Times Engram made the image durable itself, before a snapshot's or a migration's state
    /// was taken (the guest's own FLUSHes are `flushes`).
    package let imageSyncs = Atomic<Int>(0)

    package init() {}
}

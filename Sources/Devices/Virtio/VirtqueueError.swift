/// How a driver broke a virtqueue's rules; the device then needs a reset (DEVICE_NEEDS_RESET).
package enum VirtqueueError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The available index ran more than a queue's worth ahead of what the device used.
    case availableIndexRanAhead(by: UInt16, queueSize: UInt16)
    /// A descriptor index at or past the end of its table.
    case descriptorIndexOutOfRange(UInt16, tableSize: Int)
    /// The chain has more descriptors than the queue (a loop, or too long).
    case chainTooLong(limit: Int)
    /// A buffer, ring or table that is not guest RAM.
    case outsideGuestRAM(address: UInt64, length: UInt64)
    /// An indirect descriptor inside an indirect table, or with NEXT set.
    case nestedIndirect
    /// An indirect descriptor on a queue that did not negotiate them.
    case indirectNotNegotiated
    /// An indirect table whose length is not a non-zero multiple of 16 or holds more than the queue size.
    case badIndirectTable(length: UInt32)
    /// A device-readable descriptor after a device-writable one.
    case readableAfterWritable
    /// Buffer lengths that add up past 4 GiB.
    case lengthOverflow
    /// A queue size that is zero, not a power of two, or above the maximum.
    case badQueueSize(UInt16, maximum: UInt16)
    /// A ring address that breaks its alignment.
    case misaligned(address: UInt64, alignment: UInt64)
    /// A buffer too small for what the device must write first (a receive buffer without room
    /// for the virtio-net header).
    case bufferTooSmall(writable: Int, needed: Int)

    package var description: String {
        switch self {
        case .availableIndexRanAhead(let by, let size): "the available index ran \(by) entries ahead of a \(size)-entry queue"
        case .descriptorIndexOutOfRange(let index, let size): "descriptor index \(index) is outside its \(size)-entry table"
        case .chainTooLong(let limit): "a descriptor chain is longer than \(limit) (a loop?)"
        case .outsideGuestRAM(let address, let length): "buffer 0x\(String(address, radix: 16))+0x\(String(length, radix: 16)) is not guest RAM"
        case .nestedIndirect: "an indirect descriptor is nested or chained"
        case .indirectNotNegotiated: "an indirect descriptor on a queue without VIRTIO_RING_F_INDIRECT_DESC"
        case .badIndirectTable(let length): "an indirect table of \(length) bytes"
        case .readableAfterWritable: "a device-readable descriptor follows a device-writable one"
        case .lengthOverflow: "the chain's buffers add up past 4 GiB"
        case .badQueueSize(let size, let maximum): "queue size \(size) (expected a power of two from 1 to \(maximum))"
        case .misaligned(let address, let alignment): "ring address 0x\(String(address, radix: 16)) is not \(alignment)-byte aligned"
        case .bufferTooSmall(let writable, let needed): "a buffer with \(writable) writable bytes where at least \(needed) are needed"
        }
    }
}

import GuestMemory

/// One request of a block device's batch: its chain, the scatter list of its data buffers, a
/// scratch buffer for its header, ranges and status, and the bytes it wrote into guest buffers.
/// A class so that the I/O thread and a helper can each work on a slot of their own at once.
final class BlockRequestSlot: @unchecked Sendable {
    var chain: DescriptorChain
    let vectors: GuestIOVectors
    var scratch: [UInt8]
    var written: UInt32 = 0
    /// The request's type and first sector, read when it was taken (nil type: no room for a header and a status).
    var type: UInt32?
    var sector: UInt64 = 0

    init(capacity: Int, scratch count: Int) {
        chain = DescriptorChain(capacity: capacity)
        vectors = GuestIOVectors(capacity: capacity)
        scratch = [UInt8](repeating: 0, count: count)
    }
}

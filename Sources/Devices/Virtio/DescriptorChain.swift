import GuestMemory

/// One request's buffers, as the driver chained them: the device-readable ranges first, then the
/// device-writable ones, each already checked to lie in guest RAM.
///
/// Made once per queue with room for the longest chain allowed and refilled for every request, so
/// serving a queue allocates nothing. Devices treat each side as one byte stream (virtio 1.x lets
/// drivers split headers and data across descriptors as they like).
package struct DescriptorChain: Sendable {
    /// The head descriptor's index: what goes back in the used ring.
    package internal(set) var head: UInt16 = 0
    private var addresses: [UInt64]
    private var lengths: [UInt32]
    /// Segments before this index are device-readable, the rest device-writable.
    package private(set) var readableCount = 0
    package private(set) var count = 0
    /// Total device-readable and device-writable bytes.
    package private(set) var readableBytes = 0
    package private(set) var writableBytes = 0

    /// The most segments a chain may have.
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = capacity
        addresses = [UInt64](repeating: 0, count: capacity)
        lengths = [UInt32](repeating: 0, count: capacity)
    }

    mutating func removeAll() {
        count = 0
        readableCount = 0
        readableBytes = 0
        writableBytes = 0
    }

    /// Adds a segment; false when full or when a readable one would follow a writable one.
    mutating func append(address: UInt64, length: UInt32, writable: Bool) -> Bool {
        guard count < capacity else { return false }
        if !writable {
            guard readableCount == count else { return false }
            readableCount += 1
            readableBytes += Int(length)
        } else {
            writableBytes += Int(length)
        }
        addresses[count] = address
        lengths[count] = length
        count += 1
        return true
    }

    /// Segment `index` (readable ones first): its guest address and length.
    package func segment(_ index: Int) -> (address: GuestAddress, length: UInt32) {
        precondition(index >= 0 && index < count, "segment \(index) of \(count)")
        return (GuestAddress(addresses[index]), lengths[index])
    }

    /// Copies `count` bytes starting `offset` bytes into the readable stream into `buffer[index...]`.
    package func copyReadable(from offset: Int, count: Int, into buffer: inout [UInt8], at index: Int, memory: GuestMemoryMap) throws(GuestMemoryError) {
        _ = try forEachPiece(writable: false, from: offset, count: count) { (address, done, part) throws(GuestMemoryError) in
            try memory.copy(from: address, into: &buffer, at: index + done, count: part)
            return true
        }
    }

    /// Copies `buffer[index..<index+count]` to the writable stream, starting `offset` bytes into it.
    package func copyToWritable(_ buffer: [UInt8], from index: Int, count: Int, at offset: Int, memory: GuestMemoryMap) throws(GuestMemoryError) {
        _ = try forEachPiece(writable: true, from: offset, count: count) { (address, done, part) throws(GuestMemoryError) in
            try memory.copy(buffer, from: index + done, count: part, to: address)
            return true
        }
    }

    /// Lists `count` bytes of the readable (or writable) stream, from `offset`, in `vectors`.
    /// False if `vectors` cannot hold that many ranges.
    /// With `appending`, adds them after what `vectors` already lists (one request of several
    /// written with one call).
    package func list(
        writable: Bool, from offset: Int, count: Int, in vectors: GuestIOVectors, appending: Bool = false, memory: GuestMemoryMap
    ) throws(GuestMemoryError) -> Bool {
        if !appending { vectors.removeAll() }
        return try forEachPiece(writable: writable, from: offset, count: count) { (address, _, part) throws(GuestMemoryError) in
            try vectors.append(address, length: part, in: memory)
        }
    }

    /// Calls `body` with each contiguous piece of `[offset, offset+count)` of one stream: its
    /// guest address, the bytes before it, and its length. Stops (false) when `body` says so.
    private func forEachPiece(
        writable: Bool, from offset: Int, count: Int, _ body: (GuestAddress, Int, Int) throws(GuestMemoryError) -> Bool
    ) throws(GuestMemoryError) -> Bool {
        precondition(offset >= 0 && count >= 0 && offset + count <= (writable ? writableBytes : readableBytes), "range past the buffers")
        var skip = offset, done = 0, segment = writable ? readableCount : 0
        while done < count {
            let length = Int(lengths[segment])
            if skip >= length {
                skip -= length
            } else {
                let part = min(length - skip, count - done)
                guard try body(GuestAddress(addresses[segment] + UInt64(skip)), done, part) else { return false }
                done += part
                skip = 0
            }
            segment += 1
        }
        return true
    }
}

import Glibc
import LinuxSystem

/// A scatter list of guest RAM ranges for one preadv/pwritev: a block request's data buffers,
/// read from or written to a file without passing through a Swift buffer.
///
/// Made once per device queue with room for the most segments a request may have, then reset
/// and refilled per request, so the I/O path allocates nothing. Each range is checked against
/// guest RAM when it is added.
@safe
package final class GuestIOVectors: @unchecked Sendable {
    private let vectors: UnsafeMutablePointer<iovec>
    /// Keeps each range's mapping alive while it is listed.
    private var regions: [GuestRegion?]
    /// Each range's start in its region and its length, kept as listed (the transfer consumes the
    /// vectors), to record in the regions' `hostWrites` what a read put there.
    private var regionOffsets: [UInt64]
    private var lengths: [Int]
    /// The most ranges the list holds.
    package let capacity: Int
    /// The ranges listed.
    package private(set) var count = 0
    /// Their total length in bytes.
    package private(set) var byteCount = 0

    package init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        unsafe vectors = .allocate(capacity: capacity)
        regions = [GuestRegion?](repeating: nil, count: capacity)
        regionOffsets = [UInt64](repeating: 0, count: capacity)
        lengths = [Int](repeating: 0, count: capacity)
    }

    deinit { unsafe vectors.deallocate() }

    /// Empties the list.
    package func removeAll() {
        for index in 0..<count { regions[index] = nil }
        count = 0
        byteCount = 0
    }

    /// Adds `[address, address+length)` of `memory`; false if the list is full. Throws if the
    /// range is not guest RAM in one mapping.
    package func append(_ address: GuestAddress, length: Int, in memory: GuestMemoryMap) throws(GuestMemoryError) -> Bool {
        guard length > 0 else { return true }
        guard count < capacity else { return false }
        let (region, offset) = try memory.translate(address, length: UInt64(length))
        guard let base = unsafe region.pointer(at: offset, count: length) else { throw .outOfRange(address: address, length: UInt64(length)) }
        // SAFETY: index below capacity; the range was checked against its region just above.
        unsafe vectors[count] = iovec(iov_base: base, iov_len: length)
        regions[count] = region
        regionOffsets[count] = offset.rawValue
        lengths[count] = length
        count += 1
        byteCount += length
        return true
    }

    /// Fills the listed ranges from `descriptor` starting at file `offset` (preadv, retried until
    /// done). Returns the bytes read, fewer only at the end of the file.
    package func read(from descriptor: CInt, at offset: UInt64, subject: String) throws(SystemError) -> Int {
        do {
            let moved = try transfer(descriptor, at: offset, subject: subject, call: "preadv") { fd, vectors, count, position in
                unsafe preadv(fd, vectors, count, position)
            }
            recordWrites(upTo: moved)
            return moved
        } catch {
            recordWrites(upTo: byteCount)  // part may have landed before the failure
            throw error
        }
    }

    /// Writes the listed ranges to `descriptor` starting at file `offset` (pwritev, retried until
    /// done). Returns the bytes written.
    package func write(to descriptor: CInt, at offset: UInt64, subject: String) throws(SystemError) -> Int {
        try transfer(descriptor, at: offset, subject: subject, call: "pwritev") { fd, vectors, count, position in
            unsafe pwritev(fd, vectors, count, position)
        }
    }

    /// One readv(2) into the listed ranges, for a descriptor that hands over a message per call
    /// (a tap's frame): the bytes read, or nil when nothing is waiting (EAGAIN).
    package func receiveOnce(from descriptor: CInt, subject: String) throws(SystemError) -> Int? {
        let received = try once(descriptor, subject: subject, call: "readv") { fd, vectors, count in unsafe readv(fd, vectors, count) }
        recordWrites(upTo: received ?? 0)  // nothing when the tap had no frame
        return received
    }

    /// One writev(2) of the listed ranges as a single message (a frame to a tap): the bytes
    /// written, or nil when the descriptor would block.
    package func sendOnce(to descriptor: CInt, subject: String) throws(SystemError) -> Int? {
        try once(descriptor, subject: subject, call: "writev") { fd, vectors, count in unsafe writev(fd, vectors, count) }
    }

    /// After a read of `bytes` into the listed ranges, in order: the pages they landed on are
    /// recorded as written by the host.
    private func recordWrites(upTo bytes: Int) {
        var left = bytes
        for index in 0..<count where left > 0 {
            let written = min(left, lengths[index])
            regions[index]?.hostWrites.mark(offset: regionOffsets[index], count: written)
            left -= written
        }
    }

    private func once(
        _ descriptor: CInt, subject: String, call name: String, _ call: (CInt, UnsafePointer<iovec>, CInt) -> Int
    ) throws(SystemError) -> Int? {
        guard count <= 1024 /* IOV_MAX */ else { throw SystemError(name, on: subject, .invalidArgument) }
        while true {
            // SAFETY: the first `count` vectors are listed, each checked against guest RAM.
            let result = unsafe call(descriptor, vectors, CInt(count))
            if result >= 0 { return result }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw .last(name, on: subject)
            }
        }
    }

    /// Runs `call` until every listed byte moved or it reports the end of the file, stepping
    /// past what each partial call moved. Leaves the list consumed: reset it before reuse.
    private func transfer(
        _ descriptor: CInt, at offset: UInt64, subject: String, call name: String,
        _ call: (CInt, UnsafePointer<iovec>, CInt, off_t) -> Int
    ) throws(SystemError) -> Int {
        var first = 0
        var moved = 0
        while first < count {
            let batch = CInt(min(count - first, 1024 /* IOV_MAX on Linux */))
            // SAFETY: `first..<first+batch` lies inside the listed vectors.
            let result = unsafe call(descriptor, vectors + first, batch, off_t(offset) + off_t(moved))
            if result < 0 {
                if errno == EINTR { continue }
                throw .last(name, on: subject)
            }
            if result == 0 { break }
            moved += result
            var left = result
            while left > 0, first < count {
                // SAFETY: `first` is below count.
                let length = unsafe vectors[first].iov_len
                if left >= length {
                    left -= length
                    first += 1
                } else {
                    unsafe vectors[first].iov_base = vectors[first].iov_base! + left
                    unsafe vectors[first].iov_len = length - left
                    left = 0
                }
            }
        }
        return moved
    }
}

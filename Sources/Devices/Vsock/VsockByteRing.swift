/// A fixed-size FIFO of bytes: what a guest sent on a connection and the host socket has not
/// taken yet. Its size is the credit Engram gives the guest, so it never needs to grow.
struct VsockByteRing: Sendable {
    private(set) var storage: [UInt8]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) { storage = [UInt8](repeating: 0, count: capacity) }

    var capacity: Int { storage.count }
    var freeBytes: Int { storage.count - count }
    var isEmpty: Bool { count == 0 }

    /// Where the next `length` bytes may be written: up to two (offset, length) pieces.
    func freePieces(_ length: Int) -> ((Int, Int), (Int, Int)) {
        precondition(length <= freeBytes, "ring overfilled")
        let end = (start + count) % storage.count
        let first = min(length, storage.count - end)
        return ((end, first), (0, length - first))
    }

    /// Counts `length` bytes written into the free pieces.
    mutating func commit(_ length: Int) { count += length }

    /// The oldest bytes in one contiguous piece: (offset, length).
    var firstPiece: (Int, Int) { (start, min(count, storage.count - start)) }

    /// Drops `length` bytes from the front.
    mutating func consume(_ length: Int) {
        start = (start + length) % storage.count
        count -= length
        if count == 0 { start = 0 }
    }

    /// The waiting bytes, oldest first (a live update's handover).
    var contents: [UInt8] {
        let first = firstPiece
        return Array(storage[first.0..<first.0 + first.1]) + Array(storage[0..<(count - first.1)])
    }

    /// Appends `bytes`, which must fit.
    mutating func append(_ bytes: [UInt8]) {
        let (first, second) = freePieces(bytes.count)
        storage.replaceSubrange(first.0..<first.0 + first.1, with: bytes[0..<first.1])
        storage.replaceSubrange(second.0..<second.0 + second.1, with: bytes[first.1...])
        commit(bytes.count)
    }

    /// Direct access to the bytes for copies in and out.
    mutating func withStorage<R>(_ body: (inout [UInt8]) throws -> R) rethrows -> R { try body(&storage) }
}

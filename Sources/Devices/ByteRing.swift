/// A byte queue of fixed capacity, allocated once: a device's FIFO, which must never grow on a vCPU's path.
///
/// Kept inside a device's lock and never copied out (snapshots take `contents`), so its storage
/// stays uniquely referenced and writes never trigger a copy-on-write allocation.
struct ByteRing {
    private var storage: [UInt8]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a ByteRing needs room for at least one byte")
        storage = [UInt8](repeating: 0, count: capacity)
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    var freeCount: Int { storage.count - count }

    /// Adds `byte` at the tail; false (and nothing stored) when full.
    mutating func append(_ byte: UInt8) -> Bool {
        guard count < storage.count else { return false }
        var tail = head + count
        if tail >= storage.count { tail -= storage.count }
        storage[tail] = byte
        count += 1
        return true
    }

    /// Takes the oldest byte, or nil when empty.
    mutating func removeFirst() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head += 1
        if head == storage.count { head = 0 }
        count -= 1
        return byte
    }

    /// Drops every queued byte.
    mutating func removeAll() {
        head = 0
        count = 0
    }

    /// The queued bytes, oldest first. Allocates: for snapshots, not for the vCPU path.
    var contents: [UInt8] {
        (0..<count).map { storage[(head + $0) % storage.count] }
    }

    /// Replaces the contents with `bytes` (at most `capacity` of them), reusing the storage.
    mutating func replaceContents(with bytes: [UInt8]) {
        removeAll()
        for byte in bytes.prefix(storage.count) { _ = append(byte) }
    }
}

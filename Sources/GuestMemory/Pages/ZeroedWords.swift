import Glibc

/// 64-bit words that start as zero without being written: the block comes from calloc, which
/// takes large ones from fresh anonymous pages that the kernel zeroes on first touch, so a
/// bitmap over gigabytes of guest pages costs nothing until its bits are set. (A lazy restore's
/// page ledger at 8 GiB is three 256 KiB bitmaps: writing their zeros was 0.4 ms of page faults
/// before the guest ran.)
///
/// A class, so copies share the words: its owners keep it under their own lock.
@safe
package final class ZeroedWords: @unchecked Sendable {
    package let count: Int
    private let words: UnsafeMutablePointer<UInt64>

    package init(count: Int) {
        precondition(count >= 0, "a negative word count")
        self.count = count
        // SAFETY: a fresh block of at least one word, owned by this object and freed in deinit.
        guard let block = unsafe calloc(Swift.max(count, 1), MemoryLayout<UInt64>.size) else {
            fatalError("calloc of \(count) words failed")  // as an Array of that size would trap
        }
        unsafe words = block.bindMemory(to: UInt64.self, capacity: Swift.max(count, 1))
    }

    deinit {
        // SAFETY: the block allocated in init; nothing else holds it once this object goes.
        unsafe free(words)
    }

    package subscript(index: Int) -> UInt64 {
        get {
            precondition(index >= 0 && index < count, "word \(index) of \(count)")
            // SAFETY: checked to lie inside the block.
            return unsafe words[index]
        }
        set {
            precondition(index >= 0 && index < count, "word \(index) of \(count)")
            // SAFETY: checked to lie inside the block.
            unsafe words[index] = newValue
        }
    }
}

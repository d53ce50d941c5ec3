import CLinux
import Glibc

/// 64-bit words that start as zero without being written: the block comes from calloc, which
/// takes large ones from fresh anonymous pages that the kernel zeroes on first touch, so a
/// bitmap over gigabytes of guest pages costs nothing until its bits are set. (A lazy restore's
/// page ledger at 8 GiB is three 256 KiB bitmaps: writing their zeros was 0.4 ms of page faults
/// before the guest ran.)
///
/// A class, so copies share the words: its owners keep them under their own lock, or use the
/// atomic accessors (the log of pages the host wrote, which any thread marks).
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

    /// Sets `bits` in word `index` with an atomic OR, release-ordered: whoever takes the word with
    /// `takeAcquire` sees what was written before.
    @inline(__always)
    package func orRelease(_ bits: UInt64, at index: Int) {
        precondition(index >= 0 && index < count, "word \(index) of \(count)")
        // SAFETY: checked to lie inside the block.
        unsafe clinux_or_release_u64(words + index, bits)
    }

    /// Word `index`, read atomically with no ordering (a hint: is anything set?).
    @inline(__always)
    package func loadRelaxed(at index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "word \(index) of \(count)")
        // SAFETY: checked to lie inside the block.
        return unsafe clinux_load_relaxed_u64(words + index)
    }

    /// Word `index`, cleared atomically, acquire-ordered.
    @inline(__always)
    package func takeAcquire(at index: Int) -> UInt64 {
        precondition(index >= 0 && index < count, "word \(index) of \(count)")
        // SAFETY: checked to lie inside the block.
        return unsafe clinux_take_acquire_u64(words + index)
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

import LinuxSystem
/// Page-aligned memory a paging thread reads pages into before UFFDIO_COPY.
///
/// Allocated and touched once, before the thread's loop, so neither the loop nor the kernel's
/// copy out of it ever faults or allocates. Owned by one thread.
@safe
final class PageBuffer {
    let pageCount: Int
    private let memory: UnsafeMutableRawBufferPointer

    init(pageCount: Int) {
        self.pageCount = pageCount
        let byteCount = pageCount * PageSize.bytes
        unsafe memory = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: PageSize.bytes)
        // Touching every page now keeps first-touch faults out of the fault path.
        unsafe memory.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit {
        // SAFETY: allocated in init; the owning thread has finished with it.
        unsafe memory.deallocate()
    }

    /// The first `pages` pages, for one read and one copy; the view must not outlive the buffer.
    func pages(_ pages: Int) -> UnsafeMutableRawBufferPointer {
        precondition(pages > 0 && pages <= pageCount, "\(pages) pages of a \(pageCount)-page buffer")
        // SAFETY: the slice lies inside the allocation.
        return unsafe UnsafeMutableRawBufferPointer(rebasing: memory[0..<pages * PageSize.bytes])
    }
}

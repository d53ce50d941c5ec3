import Glibc
import LinuxSystem

/// Page-aligned memory a thread stages whole pages in: the source of a UFFDIO_COPY, a batch of
/// pages being sent, a chunk being read. The one type page-data code holds a staging buffer
/// as, so that code needs no raw pointer for it: pages are copied in from a region, checked and
/// hashed here by slot, bounds-checked.
///
/// Allocated and touched once, before the owner's loop, so neither the loop nor the kernel's
/// copy out of it ever faults or allocates (`prefault`); or, for a buffer whose owner uses a
/// few pages of it at a time and must answer soon after it is made (a page server's session),
/// mapped zero-filled by the kernel and faulted in page by page as it is used. Owned by one thread.
@safe
package final class PageBuffer {
    package let pageCount: Int
    private let memory: UnsafeMutableRawBufferPointer
    private let mapped: Bool

    package init(pageCount: Int, prefault: Bool = true) {
        precondition(pageCount > 0, "a page buffer holds at least one page")
        self.pageCount = pageCount
        let byteCount = pageCount * PageSize.bytes
        if prefault {
            unsafe memory = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: PageSize.bytes)
            // Touching every page now keeps first-touch faults out of the fault path.
            unsafe memory.initializeMemory(as: UInt8.self, repeating: 0)
            mapped = false
        } else {
            // Anonymous memory reads as zeros and costs nothing until a page is touched.
            let address = unsafe mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            guard let address = unsafe address, unsafe address != MAP_FAILED else {
                fatalError("out of memory: cannot map a \(byteCount)-byte page buffer")
            }
            unsafe memory = UnsafeMutableRawBufferPointer(start: address, count: byteCount)
            mapped = true
        }
    }

    deinit {
        // SAFETY: allocated or mapped in init; the owning thread has finished with it.
        if mapped {
            _ = unsafe munmap(memory.baseAddress, memory.count)
        } else {
            unsafe memory.deallocate()
        }
    }

    /// The first `pages` pages, for one read and one copy; the view must not outlive the buffer.
    package func pages(_ pages: Int) -> UnsafeMutableRawBufferPointer {
        precondition(pages > 0 && pages <= pageCount, "\(pages) pages of a \(pageCount)-page buffer")
        // SAFETY: the slice lies inside the allocation.
        return unsafe UnsafeMutableRawBufferPointer(rebasing: memory[0..<pages * PageSize.bytes])
    }

    /// Copies one page of `region` at `offset` into slot `slot`; false (and the slot unchanged)
    /// if that page is not inside the region.
    @discardableResult
    package func copyPage(into slot: Int, from region: GuestRegion, at offset: RegionOffset) -> Bool {
        let target = page(slot)
        // SAFETY: `withUnsafeBytes` checks the page lies inside the region; both views are one
        // page and are used only for this copy.
        return (try? unsafe region.withUnsafeBytes(at: offset, count: PageSize.bytes) { source in
            unsafe target.copyMemory(from: source)
        }) != nil
    }

    /// Whether slot `slot` holds only zero bytes.
    package func isZeroPage(_ slot: Int) -> Bool {
        unsafe ZeroPageScan.isZeroPage(UnsafeRawBufferPointer(page(slot)))
    }

    /// The CRC32C of slot `slot`.
    package func checksum(ofPage slot: Int) -> UInt32 {
        unsafe CRC32C.checksum(UnsafeRawBufferPointer(page(slot)))
    }

    /// Appends the bytes of slot `slot` to `bytes`.
    package func appendPage(_ slot: Int, to bytes: inout [UInt8]) {
        unsafe bytes.append(contentsOf: UnsafeRawBufferPointer(page(slot)))
    }

    /// Runs `body` on the first `pages` pages, read-only.
    package func withPages<R, E: Error>(_ pages: Int, _ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        // SAFETY: the span covers the first `pages` pages and cannot escape `body`.
        let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(self.pages(pages)))
        return try body(span)
    }

    /// Runs `body` on the first `pages` pages, to fill them.
    package func withMutablePages<R, E: Error>(_ pages: Int, _ body: (inout MutableRawSpan) throws(E) -> R) throws(E) -> R {
        // SAFETY: the span covers the first `pages` pages and cannot escape `body`.
        var span = unsafe MutableRawSpan(_unsafeBytes: self.pages(pages))
        return try body(&span)
    }

    /// Slot `slot`, one page.
    private func page(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        precondition(slot >= 0 && slot < pageCount, "page \(slot) of a \(pageCount)-page buffer")
        // SAFETY: the slot lies inside the allocation.
        return unsafe UnsafeMutableRawBufferPointer(rebasing: memory[slot * PageSize.bytes..<(slot + 1) * PageSize.bytes])
    }
}

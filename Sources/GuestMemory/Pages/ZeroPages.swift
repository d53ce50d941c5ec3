import Glibc
import LinuxSystem

/// A read-only run of zero pages: the source of a UFFDIO_COPY where the kernel offers no
/// UFFDIO_ZEROPAGE (hugetlbfs). Anonymous memory mapped PROT_READ and never written reads as
/// the kernel's zero page, so it costs no memory, and any thread may read it at once.
@safe
package final class ZeroPages: Sendable {
    package let pageCount: Int
    private let address: UInt

    package init(pageCount: Int) {
        precondition(pageCount > 0, "a run of zero pages holds at least one page")
        self.pageCount = pageCount
        let mapped = unsafe mmap(nil, pageCount * PageSize.bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let mapped = unsafe mapped, unsafe mapped != MAP_FAILED else {
            fatalError("out of address space: cannot map \(pageCount) zero pages")
        }
        address = UInt(bitPattern: unsafe mapped)
    }

    deinit {
        // SAFETY: mapped in init; nobody reads it once the owner is gone.
        _ = unsafe munmap(UnsafeMutableRawPointer(bitPattern: address), pageCount * PageSize.bytes)
    }

    /// Runs `body` on the first `pages` zero pages.
    package func withPages<R, E: Error>(_ pages: Int, _ body: (RawSpan) throws(E) -> R) throws(E) -> R {
        precondition(pages > 0 && pages <= pageCount, "\(pages) pages of a run of \(pageCount)")
        // SAFETY: the span covers mapped, read-only memory that lives as long as `self`, and cannot escape `body`.
        let span = unsafe RawSpan(_unsafeBytes: UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: pages * PageSize.bytes))
        return try body(span)
    }
}

import GuestMemory
import LinuxSystem
/// A run of a region's pages that are either all zero (not stored) or stored back to back in
/// one file, so readers move many pages per system call.
package struct PageSpan: Sendable, Equatable {
    /// The pages of the region the span covers.
    package var pages: Range<PageIndex>
    /// Index into the image's files, or nil: every page in the span is zero.
    package var file: Int?
    /// File offset of the first page (meaningless for a zero span).
    package var fileOffset: UInt64

    package init(pages: Range<PageIndex>, file: Int?, fileOffset: UInt64) {
        self.pages = pages
        self.file = file
        self.fileOffset = fileOffset
    }

    package static func zero(_ pages: Range<PageIndex>) -> PageSpan { PageSpan(pages: pages, file: nil, fileOffset: 0) }
}

/// Builds a region's spans page by page, merging neighbours stored back to back.
package struct PageSpanBuilder {
    package private(set) var spans: [PageSpan] = []
    private let pageSize: UInt64

    package init(pageSize: UInt64 = PageSize.bytes64) { self.pageSize = pageSize }

    /// Adds `pages` stored from `fileOffset` in `file` (nil: zero pages); pages must come in order.
    package mutating func append(_ pages: Range<PageIndex>, file: Int?, fileOffset: UInt64 = 0) {
        guard !pages.isEmpty else { return }
        if var last = spans.last, last.pages.upperBound == pages.lowerBound, last.file == file,
           file == nil || last.fileOffset + UInt64(last.pages.count) * pageSize == fileOffset {
            last.pages = last.pages.lowerBound..<pages.upperBound
            spans[spans.count - 1] = last
        } else {
            spans.append(PageSpan(pages: pages, file: file, fileOffset: file == nil ? 0 : fileOffset))
        }
    }

    /// The spans, with zero spans filling any gap up to `pageCount`.
    package func finished(pageCount: UInt64) -> [PageSpan] {
        var result: [PageSpan] = []
        var next: PageIndex = 0
        let pageCount = PageIndex(pageCount)
        for span in spans {
            if span.pages.lowerBound > next { result.append(.zero(next..<span.pages.lowerBound)) }
            result.append(span)
            next = span.pages.upperBound
        }
        if next < pageCount { result.append(.zero(next..<pageCount)) }
        return result
    }
}

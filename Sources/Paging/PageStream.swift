import LinuxSystem
/// Pages of a list, delivered in the list's order: how a working set is prefetched in one batched
/// transfer (a page server sends the whole list in answer to one request). Used by one thread.
package protocol PageStream {
    /// Fills `buffer` (a whole number of pages) with the next pages of the list, each checked.
    mutating func receive(into buffer: inout MutableRawSpan) throws(PageSourceError)
}

/// The stream of any source that has no batched transfer: one read per page, in order.
package struct PageByPageStream: PageStream {
    let source: any PageSource
    let pages: [PageReference]
    private var next = 0

    package init(source: any PageSource, pages: [PageReference]) {
        self.source = source
        self.pages = pages
    }

    package mutating func receive(into buffer: inout MutableRawSpan) throws(PageSourceError) {
        let size = PageSize.bytes
        for offset in stride(from: 0, to: buffer.byteCount, by: size) {
            precondition(next < pages.count, "received past the end of the page list")
            let page = pages[next]
            try buffer.withBytes(in: offset..<offset + size) { (one) throws(PageSourceError) in
                try source.readPages(region: page.region, firstPage: page.page, into: &one)
            }
            next += 1
        }
    }
}

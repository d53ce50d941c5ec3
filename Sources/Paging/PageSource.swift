import GuestMemory

/// Where the pages of guest memory come from when they are filled on demand or in bulk:
/// a local snapshot chain, a page server, or an object store.
///
/// Regions are numbered as the source numbers them; the machine's regions are built in the
/// same order. `readPages` and `PageStream.receive` run on the userfault handler and fill
/// threads: they must not allocate on success, and must either fill the buffer with the right
/// bytes or throw. A source that loses its peer may block in them until the peer is back (the
/// faulting vCPU waits), but never returns wrong bytes.
package protocol PageSource: Sendable {
    /// How many regions the source has (numbered from 0).
    var regionCount: Int { get }
    /// Pages in `region`.
    func pageCount(region: Int) -> UInt64
    /// True if `page` of `region` is known to be all zero without reading it (served with UFFDIO_ZEROPAGE).
    func isZeroPage(region: Int, page: PageIndex) -> Bool
    /// How many pages of `region` from `start` on, before `end`, are known to be zero: the fill's
    /// walk steps over them. A source with a bitmap counts a word at a time.
    func zeroPageCount(region: Int, from start: PageIndex, before end: PageIndex) -> UInt64
    /// Fills `buffer` (a whole number of pages) with pages of `region` from `firstPage`, each checked.
    func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError)
    /// `readPages` for the background fill: a source may serve it at lower priority than faults.
    /// `next`, if given, is the calling thread's next background read: a source across a link may
    /// ask for it before this read's pages are in, so that the peer works on it while this side
    /// checks and installs these.
    func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting next: PageRun?) throws(PageSourceError)
    /// Starts delivering `pages` (none of them zero pages) in order, for a prefetch.
    func streamPages(_ pages: [PageReference]) throws(PageSourceError) -> any PageStream
    /// The working set recorded for this snapshot, nil if none was.
    func loadWorkingSet() throws(PageSourceError) -> WorkingSet?
    /// Stores `set` as this snapshot's working set, replacing any earlier one.
    func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError)
    /// What crossed the network, for a source that has one.
    var transferStatistics: PageTransferStatistics? { get }
    /// Whether the background fill, once any working-set prefetch is in, runs at a lower CPU
    /// priority (nice 10) than faults and vCPUs.
    var backgroundReadsYield: Bool { get }
    /// Whether the fill should name its next read (claiming those pages one read early, so a
    /// fault there waits for the fill): yes for a source across a link, which asks for it at once.
    var asksForReadsAhead: Bool { get }
    /// How many threads the fill reads with: more than one where each read costs this side CPU
    /// of its own (decrypting a page server's TLS, checking, installing) that another core can share.
    var backgroundReadThreads: Int { get }
}

extension PageSource {
    package func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting next: PageRun?) throws(PageSourceError) {
        try readPages(region: region, firstPage: firstPage, into: &buffer)
    }

    package func zeroPageCount(region: Int, from start: PageIndex, before end: PageIndex) -> UInt64 {
        var page = start
        while page < end, isZeroPage(region: region, page: page) { page += 1 }
        return page.rawValue - start.rawValue
    }

    /// A background read with nothing named after it.
    package func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        try readPagesInBackground(region: region, firstPage: firstPage, into: &buffer, thenExpecting: nil)
    }

    package func streamPages(_ pages: [PageReference]) throws(PageSourceError) -> any PageStream {
        PageByPageStream(source: self, pages: pages)
    }

    package func loadWorkingSet() throws(PageSourceError) -> WorkingSet? { nil }

    package func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError) {
        throw .unsupported("this page source cannot store a working set")
    }

    package var transferStatistics: PageTransferStatistics? { nil }

    /// Yes for sources whose bulk reads cost the fill little CPU of its own (a file, a page server
    /// that serves the fill's connection at low priority itself).
    package var backgroundReadsYield: Bool { true }

    package var asksForReadsAhead: Bool { false }

    package var backgroundReadThreads: Int { 1 }
}

/// Bytes and requests a remote page source has moved, and how often it had to reconnect.
package struct PageTransferStatistics: Sendable, Codable, Equatable {
    package var bytesReceived: UInt64
    package var bytesSent: UInt64
    package var requests: UInt64
    package var pagesReceived: UInt64
    package var reconnects: UInt64

    package init(bytesReceived: UInt64 = 0, bytesSent: UInt64 = 0, requests: UInt64 = 0, pagesReceived: UInt64 = 0, reconnects: UInt64 = 0) {
        self.bytesReceived = bytesReceived
        self.bytesSent = bytesSent
        self.requests = requests
        self.pagesReceived = pagesReceived
        self.reconnects = reconnects
    }
}

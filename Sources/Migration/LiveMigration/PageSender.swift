import LinuxSystem
import Glibc
import GuestMemory
import Paging
import Transport

/// Sends pages of a running guest in PAGES frames of up to 256 pages. Each page is copied into
/// a staging buffer first: the guest may write it meanwhile, and the CRC must cover the bytes
/// actually sent (a later pass sends the page again, since the write dirtied it). Zero pages
/// are skipped on the first pass (the destination's memory starts zero) and named in a
/// ZERO_PAGES frame on later ones. Allocates only at creation.
final class PageSender: PageStream {
    let link: MigrationLink
    let regions: [GuestRegion]
    private let batchPages = 256
    private let staging: PageBuffer
    private var references: [UInt64]
    private var crcs: [UInt32]
    private var count = 0
    private var zeros: [UInt64] = []
    private(set) var pagesSent: UInt64 = 0
    private(set) var zeroPagesSent: UInt64 = 0
    /// Called after each frame, so progress shows during a long pass, not only between passes.
    var progress: () -> Void = {}
    var bytesSent: UInt64 { link.bytesSent }

    init(link: MigrationLink, regions: [GuestRegion]) {
        self.link = link
        self.regions = regions
        staging = PageBuffer(pageCount: batchPages)
        references = Array(repeating: 0, count: batchPages)
        crcs = Array(repeating: 0, count: batchPages)
        zeros.reserveCapacity(MigrationProtocol.maximumZeroPages)
    }

    /// Sends every page of every region that may hold data (a file's holes are skipped unread),
    /// except pages already known to be dirty again: the next pass sends those anyway. Every
    /// `refreshPages` pages, `refresh` is asked for the pages dirtied meanwhile, which join
    /// `dirty` — so a page the guest rewrites ahead of this pass goes over the wire once, not twice.
    func sendAll(
        dirty: inout [String: PageBitmap], refreshPages: Int, refresh: () throws -> [String: PageBitmap]
    ) throws {
        var sinceRefresh = 0
        for (index, region) in regions.enumerated() {
            for range in region.dataPages() {
                for page in range {
                    sinceRefresh += 1
                    if sinceRefresh == refreshPages {
                        sinceRefresh = 0
                        dirty = dirty.merging(try refresh()) { MigrationSource.union($0, $1) }
                    }
                    if dirty[region.name]?.contains(page) == true { continue }
                    try send(region: index, page: page, announceZero: false)
                }
            }
        }
        try flush()
    }

    /// Sends the pages set in `dirty` (per region name); zero ones as zero.
    func send(dirty: [String: PageBitmap]) throws(TransportError) {
        for (index, region) in regions.enumerated() {
            guard let pages = dirty[region.name] else { continue }
            try pages.forEachRun { (run: Range<PageIndex>) throws(TransportError) in
                for page in run { try send(region: index, page: page, announceZero: true) }
            }
        }
        try flush()
    }

    /// Sends what is staged, then PASS_END.
    func endPass(_ pass: UInt32) throws(TransportError) {
        try flush()
        try link.sendPassEnd(pass: pass, pages: pagesSent)
    }

    /// Stages one page; sends the batch when full.
    func send(region: Int, page: PageIndex, announceZero: Bool) throws(TransportError) {
        // The page is inside the region (it comes from the region's own page count).
        staging.copyPage(into: count, from: regions[region], at: page.regionOffset)
        let reference = PageReference(region: region, page: page).packed
        if staging.isZeroPage(count) {
            guard announceZero else { return }
            zeros.append(reference)
            if zeros.count == MigrationProtocol.maximumZeroPages { try flushZeros() }
            return
        }
        references[count] = reference
        crcs[count] = staging.checksum(ofPage: count)
        count += 1
        if count == batchPages { try flushPages() }
    }

    func flush() throws(TransportError) {
        try flushPages()
        try flushZeros()
    }

    private func flushPages() throws(TransportError) {
        guard count > 0 else { return }
        let sending = count
        count = 0
        try link.sendPages(references: references, crcs: crcs, count: sending, from: staging)
        pagesSent += UInt64(sending)
        progress()
    }

    private func flushZeros() throws(TransportError) {
        guard !zeros.isEmpty else { return }
        try link.sendZeroPages(zeros)
        zeroPagesSent += UInt64(zeros.count)
        zeros.removeAll(keepingCapacity: true)
        progress()
    }
}

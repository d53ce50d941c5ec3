import LinuxSystem
import Glibc
import GuestMemory
import Paging
import Transport

/// Sends pages of a running guest in PAGES frames of up to 256 pages. Each page is copied into
/// a staging buffer first: the guest may write it meanwhile, and the CRC must cover the bytes
/// actually sent (a later pass sends the page again, since the write dirtied it). Zero pages
/// are skipped on the first pass (the destination's memory starts zero) and named in a
/// ZERO_PAGES frame on later ones; what is staged goes out at the latest with the pass's end.
/// Allocates only at creation.
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

    /// Stages the chunk's pages; sends each batch as it fills.
    func send(_ chunk: PageChunk) throws(TransportError) {
        try chunk.forEachPage { (page) throws(TransportError) in try send(region: chunk.region, page: page, announceZero: chunk.announceZero) }
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

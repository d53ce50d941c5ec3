import GuestMemory
import LinuxSystem
import Paging

/// The destination's pre-copy loop: reads PAGES straight into the guest's regions (checking
/// each page's CRC32C in place), zeroes pages named zero, and returns the machine state that
/// ends the stream. Every reference is bounds-checked against the regions before a byte lands.
package struct MigrationReceiver {
    package let link: MigrationLink
    package let regions: [GuestRegion]
    /// Pages written so far (a page sent in several passes counts each time).
    package private(set) var pagesReceived: UInt64 = 0
    package private(set) var passes: UInt32 = 0
    /// Post-copy: the source's page server, once announced.
    package private(set) var pageServer: (port: UInt16, fingerprint: UInt64)?
    /// Pre-copy over page channels: holds each pass's end until every channel is there.
    let barrier: PassBarrier?

    package init(link: MigrationLink, regions: [GuestRegion], barrier: PassBarrier? = nil) {
        self.link = link
        self.regions = regions
        self.barrier = barrier
    }

    /// Receives until the MACHINE_STATE frame and returns its payload.
    package mutating func receiveUntilState() throws(TransportError) -> [UInt8] {
        let connection = link.connection
        while true {
            let header = try connection.readFrameHeader(maximumLength: MigrationProtocol.maximumControlFrame)
            switch header.type {
            case .pages:
                try receivePages(length: header.length)
            case .zeroPages:
                try zero(try connection.readPayload(header.length))
            case .passEnd:
                let pass = try passEnd(length: header.length)
                try barrier?.waitForChannels(toEnd: pass)
            case .pageServer:
                var reader = ByteReader(try connection.readPayload(header.length), peer: link.peer)
                pageServer = (try reader.u16("page server port"), try reader.u64("fingerprint"))
                try reader.expectEnd("the page-server frame")
            case .machineState:
                return try connection.readPayload(header.length)
            case .error:
                throw .refused(peer: link.peer, message: FramedConnection.errorMessage(try connection.readPayload(header.length)))
            default:
                throw .malformed(peer: link.peer, reason: "a \(header.type) frame in the middle of a migration")
            }
        }
    }

    /// Receives one page channel's frames (pages, zero pages, pass ends) until the source
    /// closes it after a pass's end; every pass's end waits there for the other channels.
    package mutating func receiveChannel(_ index: Int, barrier: PassBarrier) throws(TransportError) {
        let connection = link.connection
        var betweenPasses = true
        while true {
            let header: (type: FrameType, length: Int)
            do { header = try connection.readFrameHeader(maximumLength: MigrationProtocol.maximumControlFrame) } catch {
                // The source ends its channels once the last pass is out.
                if case .closed = error, betweenPasses { return barrier.channelClosed(index) }
                throw error
            }
            betweenPasses = false
            switch header.type {
            case .pages: try receivePages(length: header.length)
            case .zeroPages: try zero(try connection.readPayload(header.length))
            case .passEnd:
                try barrier.channel(index, ended: try passEnd(length: header.length))
                betweenPasses = true
            case .error:
                throw .refused(peer: link.peer, message: FramedConnection.errorMessage(try connection.readPayload(header.length)))
            default:
                throw .malformed(peer: link.peer, reason: "a \(header.type) frame on page channel \(index)")
            }
        }
    }

    /// The rest of a PASS_END frame: its pass number.
    private mutating func passEnd(length: Int) throws(TransportError) -> UInt32 {
        var reader = ByteReader(try link.connection.readPayload(length), peer: link.peer)
        let pass = try reader.u32("pass")
        _ = try reader.u64("pages sent")
        try reader.expectEnd("the pass-end frame")
        // A source ends a migration after a few dozen passes; a count at its limit is a peer's noise, not a pass.
        guard passes < UInt32.max else { throw .malformed(peer: link.peer, reason: "more than \(UInt32.max) passes") }
        passes += 1
        return pass
    }

    /// The rest of a PAGES frame whose header was read: records, then the pages into place. A run
    /// of records naming consecutive pages of one region (what a first pass sends) is one read
    /// into the region, so a large run goes from the socket (or TLS's record buffer) straight
    /// into guest memory, not through the connection's receive buffer; each page's CRC32C is
    /// then checked in place.
    private mutating func receivePages(length: Int) throws(TransportError) {
        let connection = link.connection
        let count = try connection.continuePages(length: length)
        let pageSize = PageSize.bytes
        var index = 0
        while index < count {
            let first = PageReference(packed: connection.pageRecord(index).reference)
            let region = try self.region(first)
            var end = index + 1
            while end < count, connection.pageRecord(end).reference == first.packed &+ UInt64(end - index) { end += 1 }
            // The run's last page inside the region puts all of it there: a region has fewer than
            // 2^52 pages and a frame at most 1024, so consecutive references never carry from a
            // page of one region into the next region's byte.
            _ = try self.region(PageReference(packed: connection.pageRecord(end - 1).reference))
            let run = index..<end
            // The offset in the run of the first page whose CRC does not match, if any (a range
            // outside the region cannot come after the checks above; it would count as damaged).
            let damaged: Int? = try region.withMutableBytes(at: first.page.regionOffset, count: run.count * pageSize) {
                (pages) throws(TransportError) -> Int? in
                try connection.readExactly(into: &pages)
                let bytes = pages.bytes
                return (0..<run.count).first { offset in
                    CRC32C.checksum(bytes.extracting(offset * pageSize..<(offset + 1) * pageSize)) != connection.pageRecord(run.lowerBound + offset).crc
                }
            } ?? 0
            if let damaged {
                throw .malformed(
                    peer: link.peer,
                    reason: "page \(PageIndex(first.page.rawValue + UInt64(damaged))) of region \(region.name) arrived damaged: its CRC32C does not match")
            }
            index = end
        }
        pagesReceived += UInt64(count)
    }

    /// Pages named zero become holes again where the backing has them (a memfd's or file's pages
    /// punched, anonymous ones dropped), so the destination's memory stays as sparse as the
    /// source's: a page the guest zeroed costs no host memory after the move. A run the backing
    /// cannot give back whole (hugetlbfs inside a huge page) is written with zeros instead.
    private func zero(_ payload: [UInt8]) throws(TransportError) {
        var reader = ByteReader(payload, peer: link.peer)
        let count = Int(try reader.u32("zero-page count"))
        guard (1...MigrationProtocol.maximumZeroPages).contains(count) else {
            throw .malformed(peer: link.peer, reason: "a zero-pages frame names \(count) pages")
        }
        // Runs of consecutive pages of one region, one call each (the sender names them in order).
        var run: (region: Int, pages: Range<UInt64>)?
        for _ in 0..<count {
            let reference = PageReference(packed: try reader.u64("page reference"))
            _ = try region(reference)
            let page = reference.page.rawValue
            if let current = run, current.region == reference.region, current.pages.upperBound == page {
                run = (current.region, current.pages.lowerBound..<page + 1)
                continue
            }
            if let current = run { try zero(region: regions[current.region], pages: current.pages) }
            run = (reference.region, page..<page + 1)
        }
        try reader.expectEnd("the zero-pages frame")
        if let run { try zero(region: regions[run.region], pages: run.pages) }
    }

    private static let zeroPage = [UInt8](repeating: 0, count: PageSize.bytes)

    private func zero(region: GuestRegion, pages: Range<UInt64>) throws(TransportError) {
        let bytes = pages.lowerBound * PageSize.bytes64..<pages.upperBound * PageSize.bytes64
        do {
            guard try region.discard(bytes) < UInt64(bytes.count) else { return }
            for page in pages { try region.write(Self.zeroPage, at: PageIndex(page).regionOffset) }
        } catch {
            throw .malformed(peer: link.peer, reason: "\(error)")
        }
    }

    /// The region a reference names, after checking region and page are in range.
    private func region(_ reference: PageReference) throws(TransportError) -> GuestRegion {
        guard reference.region < regions.count else {
            throw .malformed(peer: link.peer, reason: "a page of region \(reference.region); the plan has \(regions.count)")
        }
        let region = regions[reference.region]
        guard reference.page.rawValue < region.sizeInBytes / UInt64(PageSize.bytes) else {
            throw .malformed(peer: link.peer, reason: "page \(reference.page) is past the end of region \(region.name)")
        }
        return region
    }
}

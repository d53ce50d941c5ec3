import GuestMemory
import LinuxSystem

/// Checks stored pages against the CRC32C their format recorded when they were written (an
/// Engram snapshot's per-page CRCs, docs/FORMAT.md), so a damaged page is refused rather than
/// shown. Each page is hashed once: a bitset per region remembers the pages found whole, so
/// reading a page again (a page-table walk, a second query) costs no hashing.
///
/// Checks run under one lock per read, so threads reading one image wait for each other's
/// hashing; `engram mem` reads from one thread. Nothing is allocated per read or per page.
package final class PageCheck: Sendable {
    /// The CRC32C recorded for `page` of `region`.
    private let expectedCRC: @Sendable (_ region: Int, _ page: PageIndex) -> UInt32
    private let state: Locked<State>

    private struct State {
        /// Per region, one bit per page: set once the page matched its CRC.
        var verified: [[UInt64]]
        /// One page, for a page a read covers only in part: it is read whole to be checked.
        var scratch: [UInt8]
    }

    /// `pageCounts[r]` is region r's page count; `expectedCRC` answers for any page a span stores.
    /// Checked regions are whole pages (a snapshot's sizes are multiples of 4096, FORMAT.md).
    package init(pageCounts: [UInt64], expectedCRC: @escaping @Sendable (_ region: Int, _ page: PageIndex) -> UInt32) {
        self.expectedCRC = expectedCRC
        self.state = Locked(State(verified: pageCounts.map { [UInt64](repeating: 0, count: Int(($0 + 63) / 64)) },
                                 scratch: [UInt8](repeating: 0, count: PageSize.bytes)))
    }

    /// Whether `page` of `region` has been checked and found whole.
    package func isVerified(region: Int, page: PageIndex) -> Bool {
        state.withLock { $0.verified[region][Int(page.rawValue / 64)] & (1 << (page.rawValue % 64)) != 0 }
    }

    /// Checks every page that `bytes` — just read from `span` of `region` at region offset
    /// `offset` — touches and that is not yet verified. A page inside `bytes` is hashed there; a
    /// page the read covers only in part is read whole from its file into the scratch page.
    /// A mismatch throws `.damaged` naming the file, the region and the page.
    func check(
        _ bytes: RawSpan, at offset: UInt64, span: PageSpan, region: Int, in image: MemoryImage
    ) throws(InspectError) {
        guard let fileIndex = span.file, bytes.byteCount > 0 else { return }
        let file = image.files[fileIndex]
        let name = image.regions[region].name
        let pageSize = PageSize.bytes64
        let end = offset + UInt64(bytes.byteCount)
        try state.withLock { (state) throws(InspectError) in
            for page in offset / pageSize...(end - 1) / pageSize {
                let word = Int(page / 64), bit = UInt64(1) << (page % 64)
                guard state.verified[region][word] & bit == 0 else { continue }
                let pageStart = page * pageSize
                let fileOffset = span.fileOffset + (pageStart - span.pages.lowerBound.rawValue * pageSize)
                let computed: UInt32
                if pageStart >= offset, pageStart + pageSize <= end {
                    let start = Int(pageStart - offset)
                    computed = CRC32C.checksum(bytes.extracting(start..<start + Int(pageSize)))
                } else {
                    try file.read(into: &state.scratch, at: fileOffset)
                    computed = CRC32C.checksum(state.scratch)
                }
                let expected = expectedCRC(region, PageIndex(page))
                guard computed == expected else {
                    throw .damaged(path: file.path, reason: "page \(page) of region \(name) (file offset 0x\(String(fileOffset, radix: 16))) does not match its CRC32C "
                        + "(stored 0x\(String(expected, radix: 16)), computed 0x\(String(computed, radix: 16))); --no-verify reads it as stored")
                }
                state.verified[region][word] |= bit
            }
        }
    }
}

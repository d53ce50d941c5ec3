import GuestMemory
import LinuxSystem
/// Guest memory as some input holds it — a live VM's region files, an Engram snapshot, a QEMU
/// RAM file, migration stream or ELF core — in one shape every query reads: named regions,
/// their guest-physical placements, and where each page's bytes are (or that it is zero).
package final class MemoryImage: Sendable {
    /// What the input is, for people: "Engram snapshot (chain of 2 files)".
    package let kind: String
    /// The path or socket the image was opened from.
    package let source: String
    package let files: [ImageFile]
    package let regions: [ImageRegion]
    /// vCPU registers the input carries (a snapshot's state, an ELF core's notes); may be empty.
    package let processors: [ProcessorState]
    /// Checks every stored page read against the CRC its format recorded (a snapshot's); nil
    /// for inputs without page CRCs, or when the caller asked for no checking.
    package let pageCheck: PageCheck?

    package init(
        kind: String, source: String, files: [ImageFile], regions: [ImageRegion], processors: [ProcessorState] = [],
        pageCheck: PageCheck? = nil
    ) {
        self.kind = kind
        self.source = source
        self.files = files
        self.regions = regions
        self.processors = processors
        self.pageCheck = pageCheck
    }

    /// The index of the region called `name`.
    package func regionIndex(named name: String) throws(InspectError) -> Int {
        guard let index = regions.firstIndex(where: { $0.name == name }) else {
            throw .badArgument("\(source) has no region \(name); it has \(regions.map(\.name).joined(separator: ", "))")
        }
        return index
    }

    /// Fills `buffer` with the region's bytes from `offset`: stored pages read from their file
    /// (and checked, with `pageCheck`), zero pages as zeros. The range must lie inside the region.
    /// Every read of an image's pages comes here or to `RegionScan`, which both check.
    package func read(region: Int, at offset: UInt64, into buffer: inout MutableRawSpan) throws(InspectError) {
        let entry = regions[region]
        guard offset <= entry.sizeInBytes, UInt64(buffer.byteCount) <= entry.sizeInBytes - offset else {
            throw .badArgument("\(buffer.byteCount) bytes at offset \(offset) run past the end of region \(entry.name) (\(entry.sizeInBytes) bytes)")
        }
        var done = 0
        while done < buffer.byteCount {
            let position = offset + UInt64(done)
            let page = position / PageSize.bytes64
            guard let index = entry.spanIndex(of: PageIndex(page)) else {
                throw .damaged(path: source, reason: "region \(entry.name) has no entry for page \(page)")
            }
            let span = entry.spans[index]
            let spanEnd = span.pages.upperBound.regionOffset.rawValue
            let count = Int(min(UInt64(buffer.byteCount - done), spanEnd - position))
            try buffer.withBytes(in: done..<done + count) { (part) throws(InspectError) in
                guard let file = span.file else {
                    part.zeroBytes()
                    return
                }
                try files[file].read(into: &part, at: span.fileOffset + (position - span.pages.lowerBound.regionOffset.rawValue))
                try pageCheck?.check(part.bytes, at: position, span: span, region: region, in: self)
            }
            done += count
        }
    }

    /// `count` bytes of a region from `offset`, in a new array.
    package func read(region: Int, at offset: UInt64, count: Int) throws(InspectError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        try bytes.withMutableBytes { (buffer) throws(InspectError) in try read(region: region, at: offset, into: &buffer) }
        return bytes
    }

    /// The region and offset holding guest-physical `address`, if any region covers it.
    package func locate(physical address: UInt64) -> (region: Int, offset: UInt64, bytesLeft: UInt64)? {
        for (index, region) in regions.enumerated() {
            for range in region.ranges where address >= range.guestAddress && address < range.guestEnd {
                return (index, range.regionOffset + (address - range.guestAddress), range.guestEnd - address)
            }
        }
        return nil
    }

    /// `count` bytes of guest-physical memory from `address`; every byte must be in a region.
    package func readPhysical(_ address: UInt64, count: Int) throws(InspectError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var position = address
        while bytes.count < count {
            guard let place = locate(physical: position) else {
                throw .unmappedPhysical(address: position, regions: physicalRangesDescription)
            }
            let part = Int(min(UInt64(count - bytes.count), place.bytesLeft))
            bytes += try read(region: place.region, at: place.offset, count: part)
            position += UInt64(part)
        }
        return bytes
    }

    /// One little-endian 64-bit word of guest-physical memory (page-table entries).
    package func readPhysicalWord(_ address: UInt64) throws(InspectError) -> UInt64 {
        let bytes = try readPhysical(address, count: 8)
        return (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
    }

    /// The guest-physical ranges of every region, sorted, for messages.
    package var physicalRangesDescription: String {
        let ranges = regions.flatMap(\.ranges).sorted { $0.guestAddress < $1.guestAddress }
        guard !ranges.isEmpty else { return "nothing" }
        return ranges.map { "0x\(String($0.guestAddress, radix: 16))-0x\(String($0.guestEnd, radix: 16))" }.joined(separator: ", ")
    }
}

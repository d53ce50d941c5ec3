import LinuxSystem
import GuestMemory
import Paging
import SnapshotFormat

/// What a page server tells a restoring client before any page: the snapshot's fingerprint,
/// its regions, which pages hold data (the rest are zero and never cross the wire), the
/// machine state, and whether a working set was recorded (docs/PROTOCOL.md, "MANIFEST").
package struct SnapshotManifest: Sendable {
    package let fingerprint: UInt64
    package let regions: [SnapshotRegionShape]
    /// Per region, a set bit for each page that holds data.
    package let dataPages: [PageBitmap]
    package let state: [UInt8]
    /// Pages in the snapshot's working set, 0 if none was recorded.
    package let workingSetPages: UInt32

    static let maximumRegions = 64
    static let maximumNameBytes = 64
    static let maximumRegionBytes: UInt64 = 1 << 40
    static let maximumPlacements = 4
    static let maximumStateBytes = Int(SnapshotLayout.maximumStateLength + SnapshotLayout.maximumConfigurationLength)

    /// The manifest of what a page server serves (a snapshot chain or a paused VM's live memory).
    package init(memory: some ServedMemory, workingSetPages: UInt32) {
        fingerprint = memory.fingerprint
        regions = memory.regionShapes
        dataPages = (0..<memory.regionCount).map { memory.dataPages(region: $0) }
        state = memory.state
        self.workingSetPages = workingSetPages
    }

    /// The manifest of a local chain.
    package init(chain: SnapshotChain, workingSetPages: UInt32) {
        self.init(memory: chain, workingSetPages: workingSetPages)
    }

    package func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.u64(fingerprint)
        writer.u32(UInt32(regions.count))
        for (region, bitmap) in zip(regions, dataPages) {
            let name = Array(region.name.utf8)
            writer.u16(UInt16(name.count))
            writer.append(name)
            writer.u64(region.sizeInBytes)
            writer.u32(UInt32(region.placements.count))
            for placement in region.placements {
                writer.u64(placement.guestAddress.rawValue)
                writer.u64(placement.sizeInBytes)
                writer.u64(placement.regionOffset.rawValue)
            }
            writer.append(bitmap.littleEndianBytes())
        }
        writer.u32(UInt32(state.count))
        writer.append(state)
        writer.u32(workingSetPages)
        return writer.bytes
    }

    /// Decodes a manifest from `peer`, checking every count and size before using it.
    package init(decoding bytes: [UInt8], peer: String) throws(TransportError) {
        var reader = ByteReader(bytes, peer: peer)
        func bad(_ reason: String) -> TransportError { .malformed(peer: peer, reason: "its manifest \(reason)") }
        fingerprint = try reader.u64("fingerprint")
        let count = Int(try reader.u32("region count"))
        guard (1...Self.maximumRegions).contains(count) else { throw bad("has \(count) regions; expected 1 to \(Self.maximumRegions)") }
        var regions: [SnapshotRegionShape] = []
        var dataPages: [PageBitmap] = []
        for index in 0..<count {
            let nameLength = Int(try reader.u16("region name length"))
            guard (1...Self.maximumNameBytes).contains(nameLength) else { throw bad("names region \(index) with \(nameLength) bytes") }
            let name = String(decoding: try reader.bytes(nameLength, "region name"), as: UTF8.self)
            let size = try reader.u64("region size")
            guard size > 0, size % PageSize.bytes64 == 0, size <= Self.maximumRegionBytes else {
                throw bad("gives region \(name) \(size) bytes; expected a multiple of 4096 up to 1 TiB")
            }
            let placementCount = Int(try reader.u32("placement count"))
            guard placementCount <= Self.maximumPlacements else { throw bad("gives region \(name) \(placementCount) placements") }
            var placements: [GuestPlacement] = []
            for _ in 0..<placementCount {
                let guest = try reader.u64("guest address")
                let length = try reader.u64("placement size")
                let offset = try reader.u64("region offset")
                guard length > 0, offset <= size, length <= size - offset, guest <= UInt64.max - length else {
                    throw bad("places region \(name) outside itself")
                }
                placements.append(GuestPlacement(guestAddress: GuestAddress(guest), sizeInBytes: length, regionOffset: RegionOffset(offset)))
            }
            let pages = size / PageSize.bytes64
            let bitmapBytes = try reader.bytes(Int(PageBitmap.byteCount(pageCount: pages)), "data bitmap")
            guard let bitmap = PageBitmap(pageCount: pages, littleEndianBytes: bitmapBytes) else {
                throw bad("has bits past the end of region \(name)'s bitmap")
            }
            regions.append(SnapshotRegionShape(name: name, sizeInBytes: size, placements: placements))
            dataPages.append(bitmap)
        }
        let stateLength = Int(try reader.u32("state length"))
        guard stateLength <= Self.maximumStateBytes else { throw bad("has a state of \(stateLength) bytes; at most \(Self.maximumStateBytes) bytes") }
        state = try reader.bytes(stateLength, "state")
        workingSetPages = try reader.u32("working-set pages")
        try reader.expectEnd("the manifest")
        self.regions = regions
        self.dataPages = dataPages
    }
}

import LinuxSystem
import FoundationEssentials
import GuestMemory
import SnapshotFormat

/// What the source announces before any page: the mode and the regions the destination must
/// build, with, in shared mode, the file each region lives in.
package struct MigrationPlan: Codable, Sendable, Equatable {
    package struct Region: Codable, Sendable, Equatable {
        package var name: String
        package var sizeInBytes: UInt64
        package var placements: [Placement]
        /// Shared mode: the file both VMMs map.
        package var path: String?
        /// Pre-copy: the page ranges [first, end) that hold data at the source (the rest is
        /// zero and never sent), so the destination can allocate them before the first pass.
        package var dataPages: [[UInt64]]?
    }

    package struct Placement: Codable, Sendable, Equatable {
        package var guestAddress: UInt64
        package var sizeInBytes: UInt64
        package var regionOffset: UInt64
    }

    package var mode: MigrationMode
    package var regions: [Region]
    /// The machine's preview (its configuration, CPU features and disks, base64): what the
    /// destination checks before any page arrives. Absent from older sources.
    package var preview: String?
    /// Pre-copy over several connections: how many page channels join beside this one (absent
    /// or 1: the pages come on this connection), and the token each channel
    /// names to show it belongs to this migration (base64).
    package var channels: Int?
    package var channelToken: String?

    package init(
        mode: MigrationMode, shapes: [SnapshotRegionShape], paths: [String: String] = [:], dataPages: [String: [Range<PageIndex>]] = [:],
        preview: [UInt8]? = nil, channels: Int = 1, channelToken: [UInt8]? = nil
    ) {
        self.mode = mode
        if channels > 1 {
            self.channels = channels
            self.channelToken = channelToken.map { Data($0).base64EncodedString() }
        }
        self.preview = preview.map { Data($0).base64EncodedString() }
        regions = shapes.map { shape in
            Region(name: shape.name, sizeInBytes: shape.sizeInBytes, placements: shape.placements.map {
                Placement(guestAddress: $0.guestAddress.rawValue, sizeInBytes: $0.sizeInBytes, regionOffset: $0.regionOffset.rawValue)
            }, path: paths[shape.name], dataPages: dataPages[shape.name].map { $0.map { [$0.lowerBound.rawValue, $0.upperBound.rawValue] } })
        }
    }

    /// The preview's bytes (checked by `decode`).
    package var previewBytes: [UInt8]? { preview.flatMap { Data(base64Encoded: $0) }.map(Array.init) }

    /// The page channels beside the control connection (0: the pages come on it).
    package var pageChannelCount: Int { (channels ?? 1) > 1 ? channels ?? 1 : 0 }

    /// The channel token's bytes (checked by `decode`).
    package var channelTokenBytes: [UInt8]? { channelToken.flatMap { Data(base64Encoded: $0) }.map(Array.init) }

    /// The bytes of every data page the plan names: what a destination allocates before the first
    /// pass. (A decoded plan's ranges lie inside regions of at most 1 TiB, at most 64 of them.)
    package var dataBytes: UInt64 {
        regions.reduce(0) { total, region in
            total + (region.dataPages ?? []).reduce(0) { $0 + ($1[1] - $1[0]) * PageSize.bytes64 }
        }
    }

    /// The data ranges of region `index` as page ranges (checked by `decode`).
    package func dataPageRanges(region index: Int) -> [Range<PageIndex>] {
        (regions[index].dataPages ?? []).map { PageIndex($0[0])..<PageIndex($0[1]) }
    }

    /// The regions as snapshot shapes (what restore code builds memory from).
    package var shapes: [SnapshotRegionShape] {
        regions.map { region in
            SnapshotRegionShape(name: region.name, sizeInBytes: region.sizeInBytes, placements: region.placements.map {
                GuestPlacement(guestAddress: GuestAddress($0.guestAddress), sizeInBytes: $0.sizeInBytes, regionOffset: RegionOffset($0.regionOffset))
            })
        }
    }

    static let maximumRegions = 64
    static let maximumRegionBytes: UInt64 = 1 << 40
    static let maximumDataRanges = 1 << 16

    package func encoded() -> [UInt8] {
        // The plan is plain data; encoding cannot fail.
        (try? Array(JSONEncoder().encode(self))) ?? []
    }

    /// Decodes and checks a plan from `peer`: sizes, placements and names in bounds.
    package static func decode(_ bytes: [UInt8], peer: String) throws(TransportError) -> MigrationPlan {
        let plan: MigrationPlan
        do { plan = try JSONDecoder().decode(MigrationPlan.self, from: Data(bytes)) } catch {
            throw .malformed(peer: peer, reason: "its migration plan does not decode: \(error)")
        }
        func bad(_ reason: String) -> TransportError { .malformed(peer: peer, reason: "its migration plan \(reason)") }
        guard (1...maximumRegions).contains(plan.regions.count) else { throw bad("has \(plan.regions.count) regions") }
        if let preview = plan.preview, Data(base64Encoded: preview) == nil { throw bad("has a preview that is not base64") }
        if let channels = plan.channels {
            guard (2...MigrationProtocol.maximumChannels).contains(channels) else {
                throw bad("asks for \(channels) page channels; expected 2 to \(MigrationProtocol.maximumChannels)")
            }
            guard plan.mode == .precopy else { throw bad("asks for page channels in \(plan.mode.rawValue) mode; only pre-copy has them") }
            guard plan.channelTokenBytes?.count == MigrationProtocol.channelTokenLength else {
                throw bad("gives no channel token of \(MigrationProtocol.channelTokenLength) bytes")
            }
        }
        guard Set(plan.regions.map(\.name)).count == plan.regions.count else { throw bad("names a region twice") }
        for region in plan.regions {
            guard !region.name.isEmpty, region.name.utf8.count <= 64 else { throw bad("has a region name of \(region.name.utf8.count) bytes") }
            guard region.sizeInBytes > 0, region.sizeInBytes % 4096 == 0, region.sizeInBytes <= maximumRegionBytes else {
                throw bad("gives region \(region.name) \(region.sizeInBytes) bytes; expected a multiple of 4096 up to 1 TiB")
            }
            for placement in region.placements {
                guard placement.sizeInBytes > 0, placement.regionOffset <= region.sizeInBytes,
                      placement.sizeInBytes <= region.sizeInBytes - placement.regionOffset,
                      placement.guestAddress <= UInt64.max - placement.sizeInBytes else {
                    throw bad("places region \(region.name) outside itself")
                }
            }
            if plan.mode == .shared, region.path == nil { throw bad("is shared but gives no file for region \(region.name)") }
            if let ranges = region.dataPages {
                let pages = region.sizeInBytes / PageSize.bytes64
                guard ranges.count <= maximumDataRanges, ranges.allSatisfy({ $0.count == 2 && $0[0] < $0[1] && $0[1] <= pages }) else {
                    throw bad("gives region \(region.name) data ranges outside it")
                }
            }
        }
        return plan
    }
}

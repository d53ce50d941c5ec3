import GuestMemory

/// Where `SnapshotWriter` takes a file's pages from. The layout, the plan and the crash-safe
/// write are the same for every origin; only the source of each region's pages differs.
enum SnapshotPageOrigin {
    /// Live guest memory: every page (`dirtyPages` nil, a full snapshot), or only the pages set
    /// in `dirtyPages` by region name (a diff; a region not named has none).
    case memory(GuestMemoryMap, dirtyPages: [String: PageBitmap]?)
    /// The composed pages of a snapshot chain (merging it into one full snapshot).
    case chain(SnapshotChain)

    /// One region as the plan needs it.
    struct RegionDescription {
        let name: String
        let sizeInBytes: UInt64
        let placements: [GuestPlacement]
    }

    /// Every region in file order, with where it appears in guest-physical memory.
    var regions: [RegionDescription] {
        switch self {
        case .memory(let memory, _):
            memory.regions.map { region in
                RegionDescription(
                    name: region.name, sizeInBytes: region.sizeInBytes,
                    placements: memory.placements(of: region))
            }
        case .chain(let chain):
            chain.regions.map { RegionDescription(name: $0.name, sizeInBytes: $0.sizeInBytes, placements: $0.placements) }
        }
    }

    /// The dirty bitmaps of a diff, by region name; nil when every page is to be written.
    var dirtyPages: [String: PageBitmap]? {
        if case .memory(_, let dirtyPages) = self { return dirtyPages }
        return nil
    }
}

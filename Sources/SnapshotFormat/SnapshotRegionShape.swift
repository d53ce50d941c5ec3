import GuestMemory
import LinuxSystem
/// What a restore needs to know of a snapshot region before any page: its name, size and
/// guest-physical placement. A local snapshot and a page server's manifest both give it.
package struct SnapshotRegionShape: Sendable, Equatable {
    package let name: String
    package let sizeInBytes: UInt64
    package let placements: [GuestPlacement]

    package init(name: String, sizeInBytes: UInt64, placements: [GuestPlacement]) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.placements = placements
    }

    package var pageCount: UInt64 { sizeInBytes / PageSize.bytes64 }
}

extension SnapshotRegion {
    package var shape: SnapshotRegionShape { SnapshotRegionShape(name: name, sizeInBytes: sizeInBytes, placements: placements) }
}

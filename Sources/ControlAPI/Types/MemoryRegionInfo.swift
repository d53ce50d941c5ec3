/// One named guest memory region, as listed by GET /vm/memory.
package struct MemoryRegionInfo: Codable, Sendable, Equatable {
    /// The region's name, e.g. "ram".
    package var name: String
    /// The region's size.
    package var sizeInBytes: UInt64
    /// "memfd", "file", "shared-file", "hugetlbfs", "anonymous", "snapshot-private" or "fork-private".
    package var backing: String
    /// The file behind the region, when it has a name in the file system; the key is left out otherwise.
    package var path: String?
    /// Where the region appears in guest-physical memory.
    package var ranges: [GuestRangeInfo]
    /// For a backing with no name but a descriptor (memfd): `/proc/PID/fd/N`, which the VM's
    /// user can open to read the region from outside (`engram mem`). Left out otherwise.
    package var descriptorPath: String?
    /// For "fork-private" (a forked VM's memory, copy-on-write over the frozen memory of the fork
    /// that parent and children share): what holds that base. Left out otherwise.
    package var forkBase: String?

    /// A region description; `path` is nil for backings with no name (memfd, anonymous).
    package init(name: String, sizeInBytes: UInt64, backing: String, path: String?, ranges: [GuestRangeInfo], descriptorPath: String? = nil) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.backing = backing
        self.path = path
        self.ranges = ranges
        self.descriptorPath = descriptorPath
    }
}

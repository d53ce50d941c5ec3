/// What holds a region's bytes: chosen by the user, named so other processes can reach it.
package enum RegionBacking: Sendable, Equatable {
    /// An anonymous memfd (the default): shareable by descriptor, e.g. across exec or over a socket.
    case memfd
    /// An existing file the user provides; its size must equal the region size exactly.
    case file(path: String)
    /// A file Engram creates (mode 0600) for this region; `overwrite` replaces an existing one.
    case sharedFile(path: String, overwrite: Bool)
    /// An unlinked file in a hugetlbfs mount, like QEMU's -mem-path.
    case hugetlbfs(directory: String)
    /// Private anonymous memory: fastest first touch, but nothing else can map it.
    case anonymous
    /// A copy-on-write (MAP_PRIVATE) mapping of a snapshot file's page area: VMs restored from
    /// one snapshot share its page cache; guest writes go to private memory. Made by
    /// `GuestRegion(name:sizeInBytes:copyOnWriteOf:at:path:)`, never opened by name.
    case snapshotCopyOnWrite(path: String)
    /// A copy-on-write (MAP_PRIVATE) mapping of a forked VM's frozen memory (`base` says what
    /// holds it): the parent and every child map the base privately, so pages nobody changed
    /// exist once on the host.
    case forkCopyOnWrite(base: String)

    /// A named file mapped shared: another process (a migration's destination) can map the
    /// same bytes.
    package var isNamedSharedFile: Bool {
        switch self {
        case .file, .sharedFile: true
        default: false
        }
    }

    /// The short name the CLI and the control API show.
    package var kindName: String {
        switch self {
        case .memfd: "memfd"
        case .file: "file"
        case .sharedFile: "shared-file"
        case .hugetlbfs: "hugetlbfs"
        case .anonymous: "anonymous"
        case .snapshotCopyOnWrite: "snapshot-private"
        case .forkCopyOnWrite: "fork-private"
        }
    }
}

import LinuxSystem

/// What a snapshot stores besides memory: the configuration sections, written before the page
/// areas so a restore can refuse a snapshot that does not fit before touching memory, and the
/// state sections (devices, vCPUs, irqchip, timer, clock), written after them.
package struct SnapshotContents: Sendable, Equatable {
    package var configuration: StateSections
    package var state: StateSections

    package init(configuration: StateSections, state: StateSections) {
        self.configuration = configuration
        self.state = state
    }
}

/// The parent a diff names: its file name in the diff's directory and its identity.
package struct ParentSnapshot: Sendable, Equatable {
    package let fileName: String
    package let identity: SnapshotIdentity

    package init(fileName: String, identity: SnapshotIdentity) {
        self.fileName = fileName
        self.identity = identity
    }
}

/// How a snapshot file may be put at its path.
package struct WriteOptions: Sendable {
    /// Replace a file already at the path (rename); otherwise an existing file is refused (link).
    package var replacingExisting: Bool
    /// Replace even a snapshot that other snapshots in its directory name as their parent.
    package var force: Bool
    /// Files that must never be replaced: the VM's own RAM and display files.
    package var protectedFiles: [FileIdentity]
    /// The new file's id, chosen beforehand (a fork's base, whose diffs are planned before it is
    /// written); nil: a fresh random one.
    package var snapshotID: SnapshotID? = nil

    package init(replacingExisting: Bool = true, force: Bool = false, protectedFiles: [FileIdentity] = []) {
        self.replacingExisting = replacingExisting
        self.force = force
        self.protectedFiles = protectedFiles
    }
}

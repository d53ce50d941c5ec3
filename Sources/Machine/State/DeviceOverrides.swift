import Devices
import LinuxSystem

/// Host resources a restored or arriving VM gets instead of the saved ones (Firecracker's drive
/// and network overrides): clones of one snapshot each need their own disk files, taps and vsock
/// socket. What is not overridden comes back as it was saved.
package struct DeviceOverrides: Sendable, Equatable {
    /// Files replacing the saved disks, in order (fewer leave the rest as saved).
    package var disks: [DiskConfiguration] = []
    /// Taps replacing the saved network interfaces', in order.
    package var networks: [NetworkConfiguration] = []
    /// Another CID and socket for the vsock device.
    package var vsock: VsockConfiguration?
    /// Whose word a saved disk's path is: the user's own snapshot's, or a migration source's,
    /// whose disks (those no override replaces) this host opens read-write only inside the
    /// operator's directory (`receive --disk-dir`; none without it).
    package var sourceDisks = SourceDisks.trusted

    package enum SourceDisks: Sendable, Equatable {
        case trusted
        case onlyIn(directory: String?)
    }

    package init(disks: [DiskConfiguration] = [], networks: [NetworkConfiguration] = [], vsock: VsockConfiguration? = nil) {
        self.disks = disks
        self.networks = networks
        self.vsock = vsock
    }

    /// Overrides as users write them (`--disk`, `--net` and `--vsock` at restore, receive and
    /// standby; a PUT /vm/restore body): disks PATH[,readonly][,id=NAME], taps tap=NAME or fd=N, CID,PATH.
    package init(parsingDisks disks: [String], networks: [String], vsock: String?) throws(DeviceError) {
        self.init(
            disks: try disks.map { (text) throws(DeviceError) in try DiskConfiguration.parse(text) },
            networks: try networks.map { (text) throws(DeviceError) in try NetworkConfiguration.parse(text) },
            vsock: try vsock.map { (text) throws(DeviceError) in try VsockConfiguration.parse(text) })
    }

    /// `record` with these overrides applied; refuses more overrides than devices, in one line.
    package func applied(to record: MachineStateRecord) throws(MachineError) -> MachineStateRecord {
        try checkSourceDisks((record.virtio ?? []).compactMap(\.disk))
        return try record.replacingDisks(disks).replacingNetworks(networks).replacingVsock(vsock)
    }

    /// Refuses a disk of `saved` (in order) that no override replaces and that lies outside the
    /// directory `sourceDisks` allows, before anything opens it.
    package func checkSourceDisks(_ saved: [DiskConfiguration]) throws(MachineError) {
        guard case .onlyIn(let directory) = sourceDisks else { return }
        for (index, disk) in saved.enumerated() where index >= disks.count {
            guard let directory else {
                throw .disk(path: disk.path, reason: "the source names it for disk blk\(index); this destination opens a source's disks only from --disk-dir: give --disk for it, or --disk-dir")
            }
            guard let root = FileSystem.resolvedPath(directory), let resolved = FileSystem.resolvedPath(disk.path),
                  resolved.hasPrefix(root == "/" ? "/" : root + "/")
            else { throw .disk(path: disk.path, reason: "the source names it for disk blk\(index), and it is not in --disk-dir \(directory)") }
        }
    }
}

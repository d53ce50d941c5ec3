import Devices

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
        try record.replacingDisks(disks).replacingNetworks(networks).replacingVsock(vsock)
    }
}

import Devices

extension MachineStateRecord {
    /// The state child `index` of a fork starts from: the parent's, with a device identity of its
    /// own so siblings never collide. `overrides` give it its own disks, taps and vsock socket;
    /// without them a read-only disk is shared, a writable one or a network interface is refused
    /// in one line (two VMs must not write one image or share one tap queue), and the vsock
    /// device gets the CID after the parent's plus `index` and the socket `PATH-fork-INDEX`.
    /// Every network interface gets a fresh MAC address, which its driver reads at the
    /// announcement the restored device asks for.
    package func forkChild(_ index: Int, overrides: DeviceOverrides) throws(MachineError) -> MachineStateRecord {
        var record = try overrides.applied(to: self)
        var devices = record.virtio ?? []
        let saved = virtio ?? []
        for (position, device) in devices.enumerated() {
            switch device.type {
            case .block:
                guard let disk = device.disk, !disk.readOnly, disk.path == saved[position].disk?.path else { continue }
                throw .incompatibleState(
                    "disk \(device.name) (\(disk.path)) is writable: a fork's children need read-only disks or a disk of their own each (children[\(index)].disks)")
            case .network:
                guard let network = device.network else { continue }
                if network.backend == saved[position].network?.backend {
                    throw .incompatibleState(
                        "network interface \(device.name) (\(network.hostSide)) cannot be shared: give each child its own tap (children[\(index)].nets)")
                }
                devices[position].network = NetworkConfiguration(backend: network.backend, mac: .random())
            case .vsock:
                guard let vsock = device.vsock, vsock == saved[position].vsock else { continue }
                let cid = vsock.guestCID + 1 + UInt64(index)
                guard cid < UInt64(UInt32.max) else {
                    throw .incompatibleState("vsock: child \(index) would get CID \(cid); give it one (children[\(index)].vsock)")
                }
                devices[position].vsock = VsockConfiguration(guestCID: cid, path: "\(vsock.path)-fork-\(index)")
            default: continue
            }
        }
        record.virtio = devices.isEmpty ? record.virtio : devices
        return record
    }
}

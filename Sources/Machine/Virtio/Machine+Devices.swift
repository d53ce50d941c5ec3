import Devices
import LinuxSystem

/// What a virtio device reports, for the control API.
package struct VirtioDeviceReport: Sendable {
    package var name: String
    package var type: VirtioDeviceType
    package var mmioAddress: UInt64
    package var interruptLine: UInt32
    package var driverStatus: UInt32
    package var negotiatedFeatures: UInt64
    package var brokenQueues: Int
    package var disk: (configuration: DiskConfiguration, capacityBytes: UInt64, counters: BlockCounters)?
    package var entropy: (configuration: EntropyConfiguration, bytesServed: Int)?
    package var vsock: (configuration: VsockConfiguration, counters: VsockCounters)?
    package var network: (tap: String, mac: MACAddress, counters: NetworkCounters)?
}

extension Machine {
    /// Every virtio device, in layout order.
    package func virtioDevices() -> [VirtioDeviceReport] {
        zip(VirtioLayout(configuration).slots, virtio.devices).map { slot, device in
            let status = device.driverStatus, features = device.negotiatedFeatures
            return device.withBackend { backend in
                let block = backend as? VirtioBlock
                let entropy = backend as? VirtioEntropy
                return VirtioDeviceReport(
                    name: device.name, type: backend.deviceType, mmioAddress: slot.window.base, interruptLine: slot.gsi,
                    driverStatus: status, negotiatedFeatures: features, brokenQueues: device.brokenQueueCount,
                    disk: block.map { ($0.diskConfiguration, $0.capacitySectors * UInt64(VirtioBlock.sectorSize), $0.counters) },
                    entropy: entropy.map { ($0.configuration, $0.bytesServed) },
                    vsock: (backend as? VirtioVsock).map { ($0.configuration, $0.counters) },
                    network: (backend as? VirtioNet).map { ($0.tap.name, $0.mac, $0.counters) })
            }
        }
    }

    /// Serves disk `name` from the file at `path` from now on; the machine must be paused. The
    /// driver is told through a configuration change (the capacity may differ).
    package func replaceDisk(name: String, path: String, readOnly: Bool?) throws(MachineError) {
        guard control.currentState == .paused else { throw .notPaused(operation: "replace a disk") }
        let (device, current) = try disk(named: name)
        let file = try VirtioDevices.openDisk(DiskConfiguration(path: path, readOnly: readOnly ?? current.readOnly))
        do {
            try device.changeConfiguration { (backend) throws(SystemError) in
                try (backend as? VirtioBlock)?.replaceDisk(file)
            }
        } catch { throw .disk(path: path, reason: "\(error)") }
    }

    /// Limits disk `name`'s I/O from now on (nil: no limit), paused or running.
    package func limitDisk(name: String, to limit: DiskRateLimit?) throws(MachineError) {
        let (device, _) = try disk(named: name)
        device.reconfigure { ($0 as? VirtioBlock)?.setRateLimit(limit) }
    }

    private func disk(named name: String) throws(MachineError) -> (VirtioMMIODevice, DiskConfiguration) {
        guard let device = virtio.devices.first(where: { $0.name == name }),
              let current = device.withBackend({ ($0 as? VirtioBlock)?.diskConfiguration })
        else {
            throw .virtio(device: name, reason: "no such disk; disks are \(virtio.devices.filter { $0.deviceType == .block }.map(\.name))")
        }
        return (device, current)
    }
}

extension Machine {
    /// What each device keeps across a live update's exec (open disk images, vsock's listener,
    /// streams and connection table), by device name, in layout order; the machine is paused.
    package func handOverDevices() -> [(name: String, handover: VirtioHandover)] {
        virtio.devices.compactMap { device in device.handOver().map { (device.name, $0) } }
    }
}

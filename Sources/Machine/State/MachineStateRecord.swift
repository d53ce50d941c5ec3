import Devices
import KVM

/// Everything a paused machine needs to continue elsewhere, apart from guest memory.
///
/// Versioned and Codable, so the snapshot format can store it as its state section;
/// kernel structs are kept as their raw bytes (KVM's stable ABI).
package struct MachineStateRecord: Codable, Sendable, Equatable {
    /// 2: kernel structs as base64 strings keyed by name (1 had arrays of numbers).
    package static let currentVersion = 2

    package var version = MachineStateRecord.currentVersion
    /// What the machine was built with; a restore checks it against this host and Engram.
    package var configuration: SavedConfiguration
    package var vcpus: [VCPUStateRecord]
    package var interruptControllers: [InterruptControllerChip: [UInt8]]
    package var timer: [UInt8]
    package var clockNanoseconds: UInt64
    package var serial: Serial8250.State
    package var keyboardController: I8042.State
    package var powerControl: PowerControlPort.State
    /// The virtio devices in layout order; nil in states saved before Engram had them.
    package var virtio: [VirtioDeviceRecord]? = nil
    /// Where the guest's VM generation ID lives; nil in states saved before Engram had it.
    package var generationID: GenerationIDDevice? = nil
}

/// One virtio device: what it serves (its host-side configuration, reopened at restore) and its
/// transport's state.
package struct VirtioDeviceRecord: Codable, Sendable, Equatable {
    /// "blk0", "rng0": the name the layout gives it, which also fixes its window and interrupt line.
    package var name: String
    package var type: VirtioDeviceType
    package var disk: DiskConfiguration?
    /// A disk's size in sectors as the guest saw it: a restore refuses a disk of another size.
    package var capacitySectors: UInt64?
    package var entropy: EntropyConfiguration?
    package var vsock: VsockConfiguration? = nil
    /// A network interface: its tap by name, and the guest's MAC address.
    package var network: NetworkConfiguration? = nil
    /// A balloon: its configuration as it stands (the current target), and the pages the driver said it holds.
    package var balloon: BalloonConfiguration? = nil
    package var balloonActualPages: UInt32? = nil
    package var transport: VirtioTransportState
}

extension MachineStateRecord {
    /// The state with its disks replaced, in order, by `disks` (Firecracker's drive overrides:
    /// clones that need their own files); fewer overrides than disks leave the rest as saved.
    package func replacingDisks(_ disks: [DiskConfiguration]) throws(MachineError) -> MachineStateRecord {
        guard !disks.isEmpty else { return self }
        var record = self
        var devices = record.virtio ?? []
        let blocks = devices.indices.filter { devices[$0].type == .block }
        guard disks.count <= blocks.count else {
            throw .incompatibleState("\(disks.count) --disk overrides given, but the saved VM has \(blocks.count) disks")
        }
        for (index, disk) in zip(blocks, disks) {
            // A disk given without a limit keeps the saved one (an override names another file).
            let saved = devices[index].disk?.rateLimit
            devices[index].disk = disk
            if disk.rateLimit == nil { devices[index].disk?.rateLimit = saved }
        }
        record.virtio = devices
        return record
    }

    /// The state with its network interfaces' taps replaced, in order (Firecracker's network
    /// overrides: each clone of one snapshot on its own tap). The MAC stays the saved one: the
    /// guest's driver read it at boot, so a different one would not take effect.
    package func replacingNetworks(_ networks: [NetworkConfiguration]) throws(MachineError) -> MachineStateRecord {
        guard !networks.isEmpty else { return self }
        var record = self
        var devices = record.virtio ?? []
        let interfaces = devices.indices.filter { devices[$0].type == .network }
        guard networks.count <= interfaces.count else {
            throw .incompatibleState("\(networks.count) --net overrides given, but the saved VM has \(interfaces.count) network interfaces")
        }
        for (index, network) in zip(interfaces, networks) {
            let savedMAC = devices[index].network?.mac
            if let mac = network.mac, mac != savedMAC {
                throw .incompatibleState("--net mac=\(mac) for \(devices[index].name): the saved guest's address is \(savedMAC.map(String.init(describing:)) ?? "unknown") and its driver read it at boot; give the tap only")
            }
            devices[index].network = NetworkConfiguration(backend: network.backend, mac: savedMAC)
        }
        record.virtio = devices
        return record
    }

    /// The state with its vsock device's CID and socket replaced (for a clone that runs beside
    /// the original, whose socket path is taken).
    package func replacingVsock(_ vsock: VsockConfiguration?) throws(MachineError) -> MachineStateRecord {
        guard let vsock else { return self }
        var record = self
        guard let index = record.virtio?.firstIndex(where: { $0.type == .vsock }) else {
            throw .incompatibleState("--vsock given, but the saved VM has no vsock device")
        }
        record.virtio?[index].vsock = vsock
        return record
    }
}

/// The machine's shape as it was built: enough to rebuild an identical one, and to say why not.
package struct SavedConfiguration: Codable, Sendable, Equatable {
    package var cpuCount: Int
    package var memorySizeInBytes: UInt64
    /// The regions by name, in the order the snapshot stores them.
    package var regionNames: [String]
    /// For people reading a snapshot: what was booted.
    package var kernelPath: String
    package var commandLine: String?
}

/// One vCPU's saved state.
package struct VCPUStateRecord: Codable, Sendable, Equatable {
    package var id: UInt32
    /// What CPUID returned to this vCPU; a restore gives the guest exactly the same.
    package var cpuid: [CPUIDEntry]
    package var blocks: [VCPUStateBlock: [UInt8]]
    package var modelSpecificRegisters: [ModelSpecificRegister]
}

/// One MSR and its value.
package struct ModelSpecificRegister: Codable, Sendable, Equatable {
    package var index: UInt32
    package var value: UInt64
}

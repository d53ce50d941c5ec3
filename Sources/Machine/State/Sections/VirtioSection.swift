import Devices

/// Section `virtio.NAME`: one virtio device, with its 64-bit values as decimal strings like every
/// section (`VirtioDeviceRecord` is the in-memory form).
struct VirtioSection: Codable, Equatable {
    var name: String
    /// "blk", "rng", …
    var type: String
    var disk: DiskConfiguration?
    var capacitySectors: ExactUInt64?
    var entropy: EntropyRate?
    var vsock: Vsock?
    var network: Network?
    var balloon: BalloonConfiguration?
    var balloonActualPages: UInt32?
    var status: UInt32
    var driverFeatures: ExactUInt64
    var deviceFeaturesSelect: UInt32
    var driverFeaturesSelect: UInt32
    var queueSelect: UInt32
    var interruptStatus: UInt32
    var configurationGeneration: UInt32
    var queues: [Queue]

    struct Vsock: Codable, Equatable {
        var guestCID: ExactUInt64
        var path: String
    }

    /// A network interface: the tap to attach to at restore, and the guest's address.
    struct Network: Codable, Equatable {
        var tap: String
        var mac: MACAddress?
    }

    struct EntropyRate: Codable, Equatable {
        var rate: ExactUInt64
        var burst: ExactUInt64
    }

    struct Queue: Codable, Equatable {
        var size: UInt16
        var ready: Bool
        var descriptorTable: ExactUInt64
        var availableRing: ExactUInt64
        var usedRing: ExactUInt64
        var nextAvailable: UInt16
        var nextUsed: UInt16
    }

    init(_ record: VirtioDeviceRecord) {
        let transport = record.transport
        name = record.name
        type = record.type.name
        disk = record.disk
        capacitySectors = record.capacitySectors.map(ExactUInt64.init)
        entropy = record.entropy.map { EntropyRate(rate: ExactUInt64($0.rate), burst: ExactUInt64($0.burst)) }
        vsock = record.vsock.map { Vsock(guestCID: ExactUInt64($0.guestCID), path: $0.path) }
        network = record.network.map { configuration in
            switch configuration.backend {
            case .tap(let name): Network(tap: name, mac: configuration.mac)
            case .descriptor(let fd): Network(tap: "fd=\(fd)", mac: configuration.mac)  // never saved: devices report their tap by name
            }
        }
        balloon = record.balloon
        balloonActualPages = record.balloonActualPages
        status = transport.status
        driverFeatures = ExactUInt64(transport.driverFeatures)
        deviceFeaturesSelect = transport.deviceFeaturesSelect
        driverFeaturesSelect = transport.driverFeaturesSelect
        queueSelect = transport.queueSelect
        interruptStatus = transport.interruptStatus
        configurationGeneration = transport.configurationGeneration
        queues = transport.queues.map {
            Queue(size: $0.configuration.size, ready: $0.configuration.ready, descriptorTable: ExactUInt64($0.configuration.descriptorTable),
                  availableRing: ExactUInt64($0.configuration.availableRing), usedRing: ExactUInt64($0.configuration.usedRing),
                  nextAvailable: $0.nextAvailable, nextUsed: $0.nextUsed)
        }
    }

    /// The record, or nil for a device type this Engram does not know.
    var record: VirtioDeviceRecord? {
        guard let type = [VirtioDeviceType.block, .entropy, .vsock, .network, .balloon].first(where: { $0.name == self.type }) else { return nil }
        let queues = queues.map { queue in
            var configuration = VirtqueueConfiguration(size: queue.size)
            configuration.ready = queue.ready
            configuration.descriptorTable = queue.descriptorTable.value
            configuration.availableRing = queue.availableRing.value
            configuration.usedRing = queue.usedRing.value
            return VirtioTransportState.SavedQueue(configuration: configuration, nextAvailable: queue.nextAvailable, nextUsed: queue.nextUsed)
        }
        return VirtioDeviceRecord(
            name: name, type: type, disk: disk, capacitySectors: capacitySectors?.value,
            entropy: entropy.map { EntropyConfiguration(rate: $0.rate.value, burst: $0.burst.value) },
            vsock: vsock.map { VsockConfiguration(guestCID: $0.guestCID.value, path: $0.path) },
            network: network.map { NetworkConfiguration(backend: .tap($0.tap), mac: $0.mac) },
            balloon: balloon, balloonActualPages: balloonActualPages,
            transport: VirtioTransportState(
                status: status, driverFeatures: driverFeatures.value, deviceFeaturesSelect: deviceFeaturesSelect,
                driverFeaturesSelect: driverFeaturesSelect, queueSelect: queueSelect, interruptStatus: interruptStatus,
                configurationGeneration: configurationGeneration, queues: queues))
    }
}

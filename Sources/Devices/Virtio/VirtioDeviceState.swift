/// What a virtio device's transport holds, for snapshots, migration and live update: the
/// negotiated features, the status, the register selectors, every queue's registers and the
/// device's cursors in enabled queues, and the interrupt status. Decoded states are checked by
/// `VirtioMMIODevice.restoreState` before anything is applied.
package struct VirtioTransportState: Codable, Equatable, Sendable {
    package var status: UInt32
    package var driverFeatures: UInt64
    package var deviceFeaturesSelect: UInt32
    package var driverFeaturesSelect: UInt32
    package var queueSelect: UInt32
    package var interruptStatus: UInt32
    package var configurationGeneration: UInt32
    package var queues: [SavedQueue]

    package init(
        status: UInt32, driverFeatures: UInt64, deviceFeaturesSelect: UInt32, driverFeaturesSelect: UInt32, queueSelect: UInt32,
        interruptStatus: UInt32, configurationGeneration: UInt32, queues: [SavedQueue]
    ) {
        self.status = status
        self.driverFeatures = driverFeatures
        self.deviceFeaturesSelect = deviceFeaturesSelect
        self.driverFeaturesSelect = driverFeaturesSelect
        self.queueSelect = queueSelect
        self.interruptStatus = interruptStatus
        self.configurationGeneration = configurationGeneration
        self.queues = queues
    }

    /// One queue: its registers, and for an enabled queue where the device had got to.
    package struct SavedQueue: Codable, Equatable, Sendable {
        package var configuration: VirtqueueConfiguration
        package var nextAvailable: UInt16
        package var nextUsed: UInt16

        package init(configuration: VirtqueueConfiguration, nextAvailable: UInt16, nextUsed: UInt16) {
            self.configuration = configuration
            self.nextAvailable = nextAvailable
            self.nextUsed = nextUsed
        }
    }
}

/// Why a saved transport state cannot be loaded into a device.
package enum VirtioStateError: Error, Equatable, Sendable, CustomStringConvertible {
    case queueCount(device: String, saved: Int, expected: Int)
    case features(device: String, saved: UInt64, offered: UInt64)
    case queue(device: String, index: Int, VirtqueueError)
    /// The back-end cannot continue from the host side a live update handed over.
    case handover(device: String, VirtioHandoverError)

    package var description: String {
        switch self {
        case .queueCount(let device, let saved, let expected):
            "virtio device \(device): the saved state has \(saved) queues; the device has \(expected)"
        case .features(let device, let saved, let offered):
            "virtio device \(device): the guest negotiated features 0x\(String(saved, radix: 16)), which this device does not offer (0x\(String(offered, radix: 16)))"
        case .queue(let device, let index, let error):
            "virtio device \(device): saved queue \(index) cannot be used: \(error)"
        case .handover(let device, let error):
            "virtio device \(device): cannot continue its host side across the update: \(error)"
        }
    }
}

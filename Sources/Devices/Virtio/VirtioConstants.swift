/// What a virtio device is, as its DeviceID register says (virtio 1.x, section 5).
package enum VirtioDeviceType: UInt32, Sendable, Codable {
    case network = 1
    case block = 2
    case entropy = 4
    case balloon = 5
    case vsock = 19

    /// The short name used in messages, the API and the guest's console.
    package var name: String {
        switch self {
        case .network: "net"
        case .block: "blk"
        case .entropy: "rng"
        case .balloon: "balloon"
        case .vsock: "vsock"
        }
    }
}

/// Feature bits every virtio device shares (virtio 1.x, section 6).
package enum VirtioFeature {
    /// VIRTIO_RING_F_INDIRECT_DESC: a descriptor may point at a table of descriptors.
    package static let indirectDescriptors: UInt64 = 1 << 28
    /// VIRTIO_RING_F_EVENT_IDX: each side says at which index it wants the next notification.
    package static let eventIndex: UInt64 = 1 << 29
    /// VIRTIO_F_VERSION_1: a modern (1.x) device; Engram offers nothing else and requires it.
    package static let version1: UInt64 = 1 << 32
    /// The transport features Engram offers on every device.
    package static let transport: UInt64 = indirectDescriptors | eventIndex | version1
}

/// Bits of the device status register (virtio 1.x, section 2.1).
package enum VirtioStatus {
    package static let acknowledge: UInt32 = 1
    package static let driver: UInt32 = 2
    package static let driverOK: UInt32 = 4
    package static let featuresOK: UInt32 = 8
    package static let needsReset: UInt32 = 64
    package static let failed: UInt32 = 128
}

/// Registers of the virtio-mmio transport, version 2 (virtio 1.x, section 4.2.2).
package enum VirtioMMIORegister {
    package static let magicValue: UInt64 = 0x000
    package static let version: UInt64 = 0x004
    package static let deviceID: UInt64 = 0x008
    package static let vendorID: UInt64 = 0x00c
    package static let deviceFeatures: UInt64 = 0x010
    package static let deviceFeaturesSelect: UInt64 = 0x014
    package static let driverFeatures: UInt64 = 0x020
    package static let driverFeaturesSelect: UInt64 = 0x024
    package static let queueSelect: UInt64 = 0x030
    package static let queueSizeMaximum: UInt64 = 0x034
    package static let queueSize: UInt64 = 0x038
    package static let queueReady: UInt64 = 0x044
    package static let queueNotify: UInt64 = 0x050
    package static let interruptStatus: UInt64 = 0x060
    package static let interruptAcknowledge: UInt64 = 0x064
    package static let status: UInt64 = 0x070
    package static let queueDescriptorLow: UInt64 = 0x080
    package static let queueDescriptorHigh: UInt64 = 0x084
    package static let queueDriverLow: UInt64 = 0x090
    package static let queueDriverHigh: UInt64 = 0x094
    package static let queueDeviceLow: UInt64 = 0x0a0
    package static let queueDeviceHigh: UInt64 = 0x0a4
    package static let sharedMemoryLengthLow: UInt64 = 0x0b0
    package static let sharedMemoryLengthHigh: UInt64 = 0x0b4
    package static let configGeneration: UInt64 = 0x0fc
    package static let configuration: UInt64 = 0x100

    /// "virt" in little-endian.
    package static let magic: UInt32 = 0x7472_6976
    /// The modern (virtio 1.x) layout.
    package static let modernVersion: UInt32 = 2
    /// "EGRM": any value is allowed; drivers match on the device ID.
    package static let vendor: UInt32 = 0x4d52_4745
}

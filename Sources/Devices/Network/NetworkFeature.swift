/// virtio-net feature bits (virtio 1.x, section 5.1.3) Engram offers.
package enum NetworkFeature {
    /// The driver may hand over frames with a partial checksum (the tap completes it).
    package static let checksum: UInt64 = 1 << 0
    /// The driver accepts frames whose checksum is left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM).
    package static let guestChecksum: UInt64 = 1 << 1
    package static let mac: UInt64 = 1 << 5
    package static let guestTSO4: UInt64 = 1 << 7
    package static let guestTSO6: UInt64 = 1 << 8
    package static let guestECN: UInt64 = 1 << 9
    package static let hostTSO4: UInt64 = 1 << 11
    package static let hostTSO6: UInt64 = 1 << 12
    package static let hostECN: UInt64 = 1 << 13
    /// A received frame may span several receive buffers (num_buffers in its header).
    package static let mergeableReceiveBuffers: UInt64 = 1 << 15
    package static let status: UInt64 = 1 << 16
    package static let controlQueue: UInt64 = 1 << 17
    /// The device asks the driver to announce itself (after a migration or restore).
    package static let guestAnnounce: UInt64 = 1 << 21

    package static let offered: UInt64 = checksum | guestChecksum | mac | guestTSO4 | guestTSO6 | guestECN | hostTSO4 | hostTSO6 | hostECN
        | mergeableReceiveBuffers | status | controlQueue | guestAnnounce
}

/// Bits of the configuration space's `status`.
enum NetworkStatus {
    static let linkUp: UInt16 = 1
    static let announce: UInt16 = 2
}

/// The control queue's classes and commands Engram answers (virtio 1.x, 5.1.6.5).
enum NetworkControl {
    static let ok: UInt8 = 0
    static let error: UInt8 = 1
    static let announceClass: UInt8 = 3
    static let announceAcknowledge: UInt8 = 0
}

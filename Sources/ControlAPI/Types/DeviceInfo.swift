/// One virtio device as GET /vm and GET /vm/devices report it.
package struct DeviceInfo: Codable, Sendable, Equatable {
    /// "blk0", "rng0": fixed by the device's place in the layout.
    package var name: String
    /// "blk", "rng", "vsock".
    package var type: String
    /// The MMIO window's guest-physical address and the interrupt line (GSI).
    package var mmioAddress: UInt64
    package var interruptLine: UInt32
    /// The driver's status register, and whether the device is waiting for a reset.
    package var driverStatus: UInt32
    package var needsReset: Bool
    package var negotiatedFeatures: UInt64
    /// How often the guest's driver broke a queue (each needed a reset).
    package var brokenQueues: Int
    package var disk: DiskInfo?
    package var entropy: EntropyInfo?
    package var vsock: VsockInfo?
    package var network: NetworkInfo?

    package init(
        name: String, type: String, mmioAddress: UInt64, interruptLine: UInt32, driverStatus: UInt32, needsReset: Bool,
        negotiatedFeatures: UInt64, brokenQueues: Int, disk: DiskInfo? = nil, entropy: EntropyInfo? = nil, vsock: VsockInfo? = nil,
        network: NetworkInfo? = nil
    ) {
        self.name = name
        self.type = type
        self.mmioAddress = mmioAddress
        self.interruptLine = interruptLine
        self.driverStatus = driverStatus
        self.needsReset = needsReset
        self.negotiatedFeatures = negotiatedFeatures
        self.brokenQueues = brokenQueues
        self.disk = disk
        self.entropy = entropy
        self.vsock = vsock
        self.network = network
    }
}

/// A network interface's tap, address and traffic.
package struct NetworkInfo: Codable, Sendable, Equatable {
    package var tap: String
    package var mac: String
    /// Frames and bytes (Ethernet, without the virtio-net header) to the guest (rx) and from it (tx).
    package var rxPackets: Int
    package var rxBytes: Int
    package var txPackets: Int
    package var txBytes: Int
    /// Frames from the tap no guest buffer could hold, and frames from the guest that were
    /// malformed or that the tap refused.
    package var rxDropped: Int
    package var txDropped: Int
    /// Host-side failures reading or writing the tap.
    package var errors: Int

    package init(tap: String, mac: String, rxPackets: Int, rxBytes: Int, txPackets: Int, txBytes: Int, rxDropped: Int, txDropped: Int, errors: Int) {
        self.tap = tap
        self.mac = mac
        self.rxPackets = rxPackets
        self.rxBytes = rxBytes
        self.txPackets = txPackets
        self.txBytes = txBytes
        self.rxDropped = rxDropped
        self.txDropped = txDropped
        self.errors = errors
    }
}

/// A block device's file and counters.
package struct DiskInfo: Codable, Sendable, Equatable {
    package var path: String
    package var readOnly: Bool
    package var id: String
    package var capacityBytes: UInt64
    package var readBytes: Int
    package var writtenBytes: Int
    package var flushes: Int
    package var discards: Int
    /// Requests answered IOERR or UNSUPP, and chains too short to be requests.
    package var failedRequests: Int
    package var malformedRequests: Int
    /// The I/O limit (absent: none), and how often a request waited for it.
    package var rateLimit: DiskRateLimitSetting?
    package var throttledRequests: Int
    /// Times Engram synced the image before a snapshot or a migration took the state.
    package var imageSyncs: Int

    package init(
        path: String, readOnly: Bool, id: String, capacityBytes: UInt64, readBytes: Int, writtenBytes: Int, flushes: Int, discards: Int,
        failedRequests: Int, malformedRequests: Int, rateLimit: DiskRateLimitSetting? = nil, throttledRequests: Int = 0,
        imageSyncs: Int = 0
    ) {
        self.imageSyncs = imageSyncs
        self.rateLimit = rateLimit
        self.throttledRequests = throttledRequests
        self.path = path
        self.readOnly = readOnly
        self.id = id
        self.capacityBytes = capacityBytes
        self.readBytes = readBytes
        self.writtenBytes = writtenBytes
        self.flushes = flushes
        self.discards = discards
        self.failedRequests = failedRequests
        self.malformedRequests = malformedRequests
    }
}

/// An entropy device's limit and what it gave.
package struct EntropyInfo: Codable, Sendable, Equatable {
    package var rateBytesPerSecond: UInt64
    package var burstBytes: UInt64
    package var bytesServed: Int

    package init(rateBytesPerSecond: UInt64, burstBytes: UInt64, bytesServed: Int) {
        self.rateBytesPerSecond = rateBytesPerSecond
        self.burstBytes = burstBytes
        self.bytesServed = bytesServed
    }
}

/// A vsock device's socket and traffic.
package struct VsockInfo: Codable, Sendable, Equatable {
    package var guestCID: UInt64
    package var socketPath: String
    package var connectionsOpen: Int
    package var connectionsOpened: Int
    /// Packets and payload bytes to the guest (rx) and from it (tx).
    package var rxPackets: Int
    package var rxBytes: Int
    package var txPackets: Int
    package var txBytes: Int
    /// Guest packets refused (bad header, CID, type, length or operation) and connections reset
    /// for sending past their credit.
    package var refusedPackets: Int
    package var creditViolations: Int
    /// Host clients closed because the guest did not accept their connection within 2 s.
    package var requestTimeouts: Int

    package init(
        guestCID: UInt64, socketPath: String, connectionsOpen: Int, connectionsOpened: Int, rxPackets: Int, rxBytes: Int, txPackets: Int,
        txBytes: Int, refusedPackets: Int, creditViolations: Int, requestTimeouts: Int = 0
    ) {
        self.requestTimeouts = requestTimeouts
        self.guestCID = guestCID
        self.socketPath = socketPath
        self.connectionsOpen = connectionsOpen
        self.connectionsOpened = connectionsOpened
        self.rxPackets = rxPackets
        self.rxBytes = rxBytes
        self.txPackets = txPackets
        self.txBytes = txBytes
        self.refusedPackets = refusedPackets
        self.creditViolations = creditViolations
    }
}

/// The body of GET /vm/devices.
package struct DeviceList: Codable, Sendable, Equatable {
    package var devices: [DeviceInfo]
    package init(devices: [DeviceInfo]) { self.devices = devices }
}

/// The body of PATCH /vm/disk, as Firecracker's PATCH /drives/{id}: serve disk `name` from
/// another file (the VM must be paused), or change its I/O limit.
package struct DiskUpdate: Codable, Sendable, Equatable {
    package var name: String
    /// Another file to serve (the VM must be paused); absent: the same file.
    package var path: String?
    package var readOnly: Bool?
    /// A new I/O limit, taking effect at once, paused or running; `{}` removes the limit; absent: unchanged.
    package var rateLimit: DiskRateLimitSetting?

    package init(name: String, path: String? = nil, readOnly: Bool? = nil, rateLimit: DiskRateLimitSetting? = nil) {
        self.name = name
        self.path = path
        self.readOnly = readOnly
        self.rateLimit = rateLimit
    }
}

/// A disk's I/O limit in the API: a bandwidth bucket (bytes per second) and an operations
/// bucket (requests per second), each optional, as Firecracker's `rate_limiter`.
package struct DiskRateLimitSetting: Codable, Sendable, Equatable {
    package var bandwidth: TokenBucketSetting?
    package var operations: TokenBucketSetting?

    package init(bandwidth: TokenBucketSetting? = nil, operations: TokenBucketSetting? = nil) {
        self.bandwidth = bandwidth
        self.operations = operations
    }
}

/// One bucket: `rate` per second, at most `burst` at once (default: one second's worth).
package struct TokenBucketSetting: Codable, Sendable, Equatable {
    package var rate: UInt64
    package var burst: UInt64?

    package init(rate: UInt64, burst: UInt64? = nil) {
        self.rate = rate
        self.burst = burst
    }
}

/// The body of GET /vm: `{"state": "running", "vcpus": 2, "uptime_seconds": 12.5, "memory_size_in_bytes": 536870912}`.
package struct VMInfo: Codable, Sendable, Equatable {
    /// "running", "paused" or "stopping".
    package var state: String
    /// The number of vCPUs.
    package var vcpus: Int
    /// Seconds since the machine was built (monotonic clock).
    package var uptimeSeconds: Double
    /// Guest RAM, the sum of the RAM regions.
    package var memorySizeInBytes: UInt64
    /// The virtio devices (absent from VMMs before them).
    package var devices: [DeviceInfo]?

    /// A description of the machine as GET /vm reports it.
    package init(state: String, vcpus: Int, uptimeSeconds: Double, memorySizeInBytes: UInt64, devices: [DeviceInfo]? = nil) {
        self.state = state
        self.vcpus = vcpus
        self.uptimeSeconds = uptimeSeconds
        self.memorySizeInBytes = memorySizeInBytes
        self.devices = devices
    }
}

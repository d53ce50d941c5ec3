import Devices
import GuestMemory

/// Everything `engram run` needs to build a machine.
package struct MachineConfiguration: Sendable {
    package var kernelPath: String
    package var initrdPath: String?
    /// nil: a default suited to the kernel's kind.
    package var commandLine: String?
    package var memorySizeInBytes: UInt64
    package var cpuCount: Int
    /// Backing per region name; regions not listed use a memfd.
    package var backings: [String: RegionBacking]
    /// Unpack a bzImage's payload on the host and enter vmlinux directly (see BzImageLoader).
    package var decompressOnHost = false
    /// A linear framebuffer in its own region (backed by `backings["framebuffer"]`), or none.
    package var display: DisplayConfiguration?
    /// virtio-blk devices, in order (blk0, blk1, …).
    package var disks: [DiskConfiguration] = []
    /// virtio-net devices, in order (net0, net1, …).
    package var networks: [NetworkConfiguration] = []
    /// A virtio-rng device, or none.
    package var entropy: EntropyConfiguration?
    /// Host sides a live update's previous process kept across exec, by device name: disk
    /// images served instead of opening the configured path again, vsock's listener and
    /// connections continued instead of reset.
    package var inheritedDevices: [String: VirtioHandover] = [:]
    /// A virtio-vsock device, or none.
    package var vsock: VsockConfiguration?
    /// A virtio-balloon device, or none.
    package var balloon: BalloonConfiguration?
    /// The VM generation ID and its ACPI tables; a booted machine always has them, a restored
    /// one if its snapshot did.
    package var generationID: GenerationIDDevice? = .standard

    package init(kernelPath: String, initrdPath: String? = nil, commandLine: String? = nil,
                 memorySizeInBytes: UInt64 = 512 << 20, cpuCount: Int = 1, backings: [String: RegionBacking] = [:]) {
        self.kernelPath = kernelPath
        self.initrdPath = initrdPath
        self.commandLine = commandLine
        self.memorySizeInBytes = memorySizeInBytes
        self.cpuCount = cpuCount
        self.backings = backings
    }

    /// The regions a machine may have, by name: main RAM, and the framebuffer when it has a display.
    package static let regionNames = ["ram", "framebuffer"]
    package static let maximumCPUCount = 254
}

/// A machine's display: the framebuffer's shape, and the control socket its header names so a
/// display process knows where to send keys.
package struct DisplayConfiguration: Sendable {
    package var geometry: FramebufferGeometry
    package var controlSocketPath: String

    package init(geometry: FramebufferGeometry, controlSocketPath: String = "") {
        self.geometry = geometry
        self.controlSocketPath = controlSocketPath
    }
}

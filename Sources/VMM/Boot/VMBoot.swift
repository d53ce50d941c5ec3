import Devices
import GuestMemory
import Machine

/// Everything `engram run` asks of a fresh VM.
package struct BootRequest: Sendable {
    package var kernel: String
    package var initrd: String?
    package var commandLine: String?
    package var memorySizeInBytes: UInt64
    package var cpuCount = 1
    /// Main RAM from this existing file, exactly `memorySizeInBytes` long.
    package var ramFile: String?
    /// Region name → a file to create (mode 0600) for it.
    package var sharedMaps: [String: String] = [:]
    /// Let `sharedMaps` replace existing files.
    package var replaceSharedMaps = false
    /// Main RAM in an unlinked file of this hugetlbfs mount.
    package var hugetlbfs: String?
    /// Main RAM as private anonymous memory.
    package var anonymousMemory = false
    /// Unpack a bzImage's xz payload on the host.
    package var decompressOnHost = false
    package var consoleLog: String?
    package var apiSocket: String?
    /// The framebuffer's display file, and its size.
    package var display: String?
    package var displaySize = "1024x768"
    /// virtio-blk devices, in order.
    package var disks: [DiskConfiguration] = []
    /// A virtio-rng device, or none.
    package var entropy: EntropyConfiguration?
    /// virtio-net interfaces (`--net tap=NAME` or `--net fd=N`), in order.
    package var networks: [NetworkConfiguration] = []
    /// A virtio-vsock device (`--vsock CID,PATH`), or none.
    package var vsock: VsockConfiguration?
    /// A virtio-balloon device (`--balloon ...`), or none.
    package var balloon: BalloonConfiguration?

    package init(kernel: String, memorySizeInBytes: UInt64) {
        self.kernel = kernel
        self.memorySizeInBytes = memorySizeInBytes
    }

    /// Refuses options that do not go together, before anything is opened.
    package func validate() throws(VMMError) {
        let ramChoices = [ramFile != nil, sharedMaps["ram"] != nil, hugetlbfs != nil, anonymousMemory]
        guard ramChoices.filter({ $0 }).count <= 1 else {
            throw .invalidRequest("choose one backing for main RAM: --ram-file, --shared-maps ...:ram, --hugetlbfs or --anonymous-memory")
        }
        guard cpuCount >= 1 && cpuCount <= MachineConfiguration.maximumCPUCount else {
            throw .invalidRequest("--cpus must be between 1 and \(MachineConfiguration.maximumCPUCount)")
        }
        if display != nil, sharedMaps[Machine.framebufferRegionName] != nil {
            throw .invalidRequest("choose one file for the framebuffer: --display FILE or --shared-maps ...:framebuffer")
        }
        if case .failure(let error) = FramebufferGeometry.parse(displaySize) { throw .invalidRequest("--display-size: \(error)") }
    }

    /// The machine this request describes.
    package func machineConfiguration() throws(MachineError) -> MachineConfiguration {
        var backings: [String: RegionBacking] = [:]
        for (name, path) in sharedMaps.sorted(by: { $0.key < $1.key }) {
            guard MachineConfiguration.regionNames.contains(name) else {
                throw .memory(.unknownRegion(name: name, known: MachineConfiguration.regionNames))
            }
            backings[name] = .sharedFile(path: path, overwrite: replaceSharedMaps)
        }
        if let ramFile { backings["ram"] = .file(path: ramFile) }
        if let hugetlbfs { backings["ram"] = .hugetlbfs(directory: hugetlbfs) }
        if anonymousMemory { backings["ram"] = .anonymous }
        if let display { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) }
        var configuration = MachineConfiguration(kernelPath: kernel, initrdPath: initrd, commandLine: commandLine,
                                                 memorySizeInBytes: memorySizeInBytes, cpuCount: cpuCount, backings: backings)
        configuration.decompressOnHost = decompressOnHost
        configuration.disks = disks
        configuration.entropy = entropy
        configuration.vsock = vsock
        configuration.balloon = balloon
        configuration.networks = networks
        if backings[Machine.framebufferRegionName] != nil, case .success(let geometry) = FramebufferGeometry.parse(displaySize) {
            configuration.display = DisplayConfiguration(geometry: geometry, controlSocketPath: apiSocket.map(PathName.absolute) ?? "")
        }
        return configuration
    }
}

/// Boots fresh VMs.
package enum VMBoot {
    /// Builds the VM `request` describes and runs the guest to its end; returns the exit status.
    package static func run(_ request: BootRequest) throws(VMMError) -> Int32 {
        try request.validate()
        TerminationSignals.block()
        let machine: Machine
        do throws(MachineError) {
            machine = try Machine(configuration: try request.machineConfiguration(), consoleLogPath: request.consoleLog)
        } catch {
            throw .failed(error.description)
        }
        let controller = MachineController(
            machine: machine, liveUpdate: LiveUpdateSession(apiSocket: request.apiSocket, consoleLogPath: request.consoleLog))
        return try MachineSession.run(machine, controller: controller, setup: MachineSession.Setup(apiSocket: request.apiSocket))
    }
}

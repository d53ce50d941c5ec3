import ArgumentParser
import ControlAPI
import Devices
import Glibc
import GuestMemory
import Machine

/// `engram run`: boots a kernel with guest RAM in named, shareable files.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Boot a kernel (ELF with a PVH note, or a Linux bzImage) with its console on this terminal.",
        discussion: "Ctrl-A x quits. Guest RAM is a memfd unless --ram-file, --shared-maps, --hugetlbfs or --anonymous-memory says otherwise."
    )

    @Option(help: "The kernel: an ELF with a PVH entry note, or a Linux bzImage.") var kernel: String
    @Option(help: "An initial ramdisk.") var initrd: String?
    @Option(help: "The kernel command line.") var cmdline: String?
    @Option(help: "Guest RAM size: bytes or with K/M/G suffix.") var memory = ByteSize(argument: "512M")!
    @Option(help: "Number of vCPUs.") var cpus = 1
    @Option(help: "Map main RAM from this existing file, which must be exactly --memory bytes.") var ramFile: String?
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region, e.g. /dev/shm/vm:ram.") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: "Back main RAM with an unlinked file in this hugetlbfs mount.") var hugetlbfs: String?
    @Flag(help: "Back main RAM with private anonymous memory (no file; fastest first touch).") var anonymousMemory = false
    @Flag(help: "Unpack a bzImage's xz payload on the host and enter vmlinux directly (faster; no physical KASLR).")
    var decompressOnHost = false
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?
    @Option(help: "Give the guest a framebuffer, shared in this file (mode 0600); show it with engram display FILE.")
    var display: String?
    @Option(help: "The framebuffer's size in pixels, WIDTHxHEIGHT.") var displaySize = "1024x768"

    func validate() throws {
        let ramChoices = [ramFile != nil, sharedMaps?.regionNames.contains("ram") == true, hugetlbfs != nil, anonymousMemory]
        guard ramChoices.filter({ $0 }).count <= 1 else {
            throw ValidationError("choose one backing for main RAM: --ram-file, --shared-maps ...:ram, --hugetlbfs or --anonymous-memory")
        }
        guard cpus >= 1 && cpus <= MachineConfiguration.maximumCPUCount else {
            throw ValidationError("--cpus must be between 1 and \(MachineConfiguration.maximumCPUCount)")
        }
        if display != nil, sharedMaps?.regionNames.contains(Machine.framebufferRegionName) == true {
            throw ValidationError("choose one file for the framebuffer: --display FILE or --shared-maps ...:framebuffer")
        }
        if case .failure(let error) = FramebufferGeometry.parse(displaySize) { throw ValidationError("--display-size: \(error)") }
    }

    func run() throws {
        TerminationSignals.block()
        let machine: Machine
        do {
            machine = try Machine(configuration: try machineConfiguration(), consoleLogPath: consoleLog)
        } catch {
            throw CommandFailure(error.description)
        }
        let controller = MachineController(
            machine: machine, liveUpdate: LiveUpdateSession(apiSocket: apiSocket, consoleLogPath: consoleLog))
        try MachineSession.run(machine, controller: controller, setup: MachineSession.Setup(apiSocket: apiSocket))
    }

    private func machineConfiguration() throws(MachineError) -> MachineConfiguration {
        var backings: [String: RegionBacking] = [:]
        if let sharedMaps {
            for name in sharedMaps.regionNames {
                guard MachineConfiguration.regionNames.contains(name) else {
                    throw .memory(.unknownRegion(name: name, known: MachineConfiguration.regionNames))
                }
                backings[name] = .sharedFile(path: sharedMaps.path(for: name), overwrite: force)
            }
        }
        if let ramFile { backings["ram"] = .file(path: ramFile) }
        if let hugetlbfs { backings["ram"] = .hugetlbfs(directory: hugetlbfs) }
        if anonymousMemory { backings["ram"] = .anonymous }
        if let display { backings[Machine.framebufferRegionName] = try DisplayFile.backing(path: display) }
        var configuration = MachineConfiguration(kernelPath: kernel, initrdPath: initrd, commandLine: cmdline,
                                                 memorySizeInBytes: memory.bytes, cpuCount: cpus, backings: backings)
        configuration.decompressOnHost = decompressOnHost
        if backings[Machine.framebufferRegionName] != nil, case .success(let geometry) = FramebufferGeometry.parse(displaySize) {
            configuration.display = DisplayConfiguration(geometry: geometry, controlSocketPath: apiSocket.map(SnapshotCommand.absolute) ?? "")
        }
        return configuration
    }
}

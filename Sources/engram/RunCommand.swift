import ArgumentParser
import Devices
import VMM

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
    @Option(help: "A virtio-blk disk: PATH[,readonly][,id=NAME][,bandwidth=BYTES_PER_S[,bandwidth_burst=N]][,iops=N[,iops_burst=N]] (repeat for more).") var disk: [String] = []
    @Option(help: "A virtio-net interface on a tap: tap=NAME[,mac=MAC] (attached to, or created) or fd=N[,mac=MAC] (an open tap queue with IFF_VNET_HDR, handed over); repeat for more. Default MAC: random, locally administered.")
    var net: [String] = []
    @Option(help: "A virtio-rng device: on, or rate=BYTES_PER_SECOND[,burst=BYTES] (default 1 MiB/s, bursts of 64 KiB).")
    var rng: String?
    @Option(help: "A virtio-vsock device: CID,PATH (Firecracker's guest_cid and uds_path; CID at least 3). Host programs connect to the Unix socket PATH and write \"CONNECT <port>\\n\"; guest connections to host port P go to PATH_P.")
    var vsock: String?
    @Option(help: "A virtio-balloon device: AMOUNT_MIB[,deflate_on_oom][,stats_interval_s=SECONDS][,free_page_reporting] (Firecracker's balloon). Pages the guest gives up or reports free go back to the host.")
    var balloon: String?

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws {
        do { try request().validate() } catch { throw ValidationError("\(error)") }
    }

    func run() throws {
        try seccomp.apply()
        let request: BootRequest
        do { request = try self.request() } catch { throw ValidationError(error.description) }
        try runToEnd { () throws(VMMError) in try VMBoot.run(request) }
    }

    private func request() throws(DeviceError) -> BootRequest {
        var request = BootRequest(kernel: kernel, memorySizeInBytes: memory.bytes)
        request.initrd = initrd
        request.commandLine = cmdline
        request.cpuCount = cpus
        request.ramFile = ramFile
        request.sharedMaps = sharedMaps.pathsByRegion
        request.replaceSharedMaps = force
        request.hugetlbfs = hugetlbfs
        request.anonymousMemory = anonymousMemory
        request.decompressOnHost = decompressOnHost
        request.consoleLog = consoleLog
        request.apiSocket = apiSocket
        request.display = display
        request.displaySize = displaySize
        request.disks = try disk.map { (text) throws(DeviceError) in try DiskConfiguration.parse(text) }
        request.networks = try net.map { (text) throws(DeviceError) in try NetworkConfiguration.parse(text) }
        request.entropy = try rng.map { (text) throws(DeviceError) in try EntropyConfiguration.parse(text) }
        request.vsock = try vsock.map { (text) throws(DeviceError) in try VsockConfiguration.parse(text) }
        request.balloon = try balloon.map { (text) throws(DeviceError) in try BalloonConfiguration.parse(text) }
        return request
    }
}

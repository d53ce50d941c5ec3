import ArgumentParser
import VMM

/// `engram standby`: a VMM made ready before it knows its snapshot; PUT /vm/restore makes it one.
struct StandbyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "standby",
        abstract: "Start a VMM that waits for a snapshot, ready to restore it in milliseconds.",
        discussion: """
            Everything a restore can do before it knows the snapshot is done now: the KVM VM, its interrupt controller and \
            timer, and memory slots registered over placeholder RAM of --memory bytes. PUT /vm/restore on the control socket \
            ({"snapshot": PATH, tcp://HOST:PORT or s3://BUCKET/NAME, "memory": "map", "lazy" or "copy"}) maps the snapshot's \
            memory over the placeholder, loads the state and runs the guest; the VMM is then that VM until it ends. A snapshot \
            with another vCPU count, RAM size or a display is refused in one line and the standby VMM waits for the next request. \
            --disk, --net and --vsock replace the snapshot's devices, as with engram restore (a request may name its own). \
            With --hugetlbfs the placeholder RAM is on huge pages, reserved at start, and copy and lazy restores fill them \
            (a lazy fault installs a whole 2 MiB page); a mapped restore is then refused.
            """
    )

    @Option(help: "Guest RAM size every restored snapshot must have: bytes or with K/M/G suffix.") var memory: ByteSize
    @Option(help: "Number of vCPUs every restored snapshot must have.") var cpus = 1
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String
    @Option(help: "Also copy the restored VM's console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Put the placeholder RAM in this hugetlbfs mount (its huge pages reserved now; copy and lazy restores only).")
    var hugetlbfs: String?
    @OptionGroup(title: "Page server security (tcp:// snapshots)") var security: TransportSecurityOptions
    @OptionGroup var devices: DeviceOverrideOptions
    @OptionGroup var store: ObjectStoreOptions
    @OptionGroup var chunkCache: ChunkCacheOptions

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws { _ = try options() }

    func run() throws {
        try seccomp.apply()
        let options = try options()
        try runToEnd { () throws(VMMError) in try StandbySession.run(options) }
    }

    private func options() throws -> StandbyOptions {
        var options = StandbyOptions(cpuCount: cpus, memorySizeInBytes: memory.bytes, apiSocket: apiSocket)
        options.consoleLog = consoleLog
        options.hugetlbfs = hugetlbfs
        options.security = security.options
        security.warnIfPlaintext()
        do { options.devices = try devices.overrides() } catch { throw ValidationError(error.description) }
        let store = store, cache = chunkCache, credentials = store.takeCredentials()
        options.objectStore = { (name) throws(VMMError) in
            do { return try store.access(name, credentials: credentials, cache: cache) } catch {
                throw .invalidRequest("\(error)")
            }
        }
        return options
    }
}

import ArgumentParser
import Devices
import Paging
import VMM

/// `engram restore SNAPSHOT`: starts a VM from a snapshot (and its diff parents) where it left off.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Start a VM from a snapshot; the guest continues where it was.",
        discussion: """
            --memory copy reads every stored page into fresh memfd regions (checking each page's CRC) before the guest runs. \
            --memory map maps the snapshot copy-on-write: nothing is read up front and VMs restored from one snapshot share \
            its page cache. --memory lazy serves each first touch through userfaultfd while a background pass fills the rest. \
            map and lazy do not read every page up front; --verify checks every page's CRC first (lazy checks each page as it \
            is served either way). SNAPSHOT may be tcp://HOST:PORT of an `engram serve` (with --secret-file): copy fetches \
            every page first, lazy fetches each page on first touch and streams the rest. --record-working-set records the \
            pages the guest touches in its first seconds beside the snapshot; later lazy restores fetch them at resume.
            """
    )

    @Argument(help: "The snapshot file (a full snapshot, or a diff whose parents are in its directory), or tcp://HOST:PORT of a page server.")
    var snapshot: String
    @Option(help: "How memory comes back: copy, map or lazy.") var memory: RestoreMode = .map
    @Flag(help: "Check every stored page's CRC before the guest runs.") var verify = false
    @Flag(help: ArgumentHelp(
        "Log the guest's writes from the start, so `engram snapshot --diff` can write a diff whose parent is SNAPSHOT.",
        discussion: "Off by default, as in Firecracker: dirty logging slows the guest's first write to each page."))
    var trackDirtyPages = false
    @Option(help: "Create PREFIX.NAME (mode 0600) for each named region (copy and lazy modes).") var sharedMaps: SharedMapsOption?
    @Flag(help: "Let --shared-maps replace existing files.") var force = false
    @Option(help: ArgumentHelp(
        "Put main RAM in this hugetlbfs mount (copy and lazy modes).",
        discussion: "A lazy fault then installs a whole huge page from the snapshot, the page server or the object store."))
    var hugetlbfs: String?
    @Option(help: "Put the restored framebuffer in this display file (copy and lazy modes), for engram display.")
    var display: String?
    @Option(help: "Also copy the console output to this file (mode 0600).") var consoleLog: String?
    @Option(help: "Serve the control API (HTTP/JSON) on this Unix socket (mode 0600).") var apiSocket: String?
    @OptionGroup(title: "Page server security (tcp:// snapshots)") var security: TransportSecurityOptions
    @Option(help: "Seconds to keep reconnecting to a page server that went away before the VM gives up.") var reconnectTimeout = 300
    @Option(help: ArgumentHelp(
        "Record the pages the guest touches in its first SECONDS as the snapshot's working set (lazy only).",
        discussion: "The background fill waits meanwhile, so that every touch is seen.", valueName: "seconds"))
    var recordWorkingSet: Double?
    @Option(help: ArgumentHelp(
        "Lazy: a fault on a page next to the previous fault brings in its aligned group of this many pages (1 to 512).",
        discussion: "Default 16 from a local file; 1 from a page server, where the background fill reads ahead of each fault instead."))
    var faultClusterPages: Int?
    @Flag(inversion: .prefixedNo, help: "Fetch the snapshot's working set in one transfer at resume, if one was recorded (lazy only).")
    var prefetch = true
    @OptionGroup var devices: DeviceOverrideOptions
    @OptionGroup var store: ObjectStoreOptions
    @OptionGroup var chunkCache: ChunkCacheOptions

    @OptionGroup var seccomp: SeccompOptions

    func validate() throws {
        if chunkCache.isGiven && !RestoreSource.isObjectStore(snapshot) { throw ValidationError("--chunk-cache and --no-chunk-cache go with an s3:// snapshot") }
        let request = try request()
        do { try request.validate() } catch { throw ValidationError(error.description) }
    }

    func run() throws {
        try seccomp.apply()
        let request = try request()
        try runToEnd { () throws(VMMError) in try VMRestore.run(request) }
    }

    private func request() throws -> RestoreRequest {
        var request = RestoreRequest(snapshot: snapshot)
        request.memory = memory
        request.verify = verify
        request.trackDirtyPages = trackDirtyPages
        request.sharedMaps = sharedMaps.pathsByRegion
        request.replaceSharedMaps = force
        request.hugetlbfs = hugetlbfs
        request.display = display
        request.consoleLog = consoleLog
        request.apiSocket = apiSocket
        request.security = security.options
        security.warnIfPlaintext()
        request.reconnectTimeoutSeconds = reconnectTimeout
        request.recordWorkingSetSeconds = recordWorkingSet
        request.faultClusterPages = faultClusterPages
        request.prefetch = prefetch
        do { request.overrides = try devices.overrides() } catch { throw ValidationError(error.description) }
        if RestoreSource.isObjectStore(snapshot) {
            request.objectStore = try store.access(
                snapshot, credentials: store.takeCredentials(), cache: chunkCache)
        }
        return request
    }
}

extension RestoreMode: ExpressibleByArgument {}

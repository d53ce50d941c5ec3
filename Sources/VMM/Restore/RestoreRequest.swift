import Devices
import Machine
import ObjectStore
import Paging
import Transport

/// Everything `engram restore` (and, later, a standby VMM's PUT /vm/restore) asks of a restore.
package struct RestoreRequest: Sendable {
    /// A snapshot file (a full snapshot, or a diff whose parents are in its directory),
    /// tcp://HOST:PORT of a page server, or s3://BUCKET/NAME.
    package var snapshot: String
    package var memory: RestoreMode = .map
    /// Check every stored page's CRC before the guest runs (local files).
    package var verify = false
    /// Log the guest's writes from the start, so the next diff snapshot names this one as parent.
    package var trackDirtyPages = false
    /// Region name → a file to create (mode 0600) for it (copy and lazy modes).
    package var sharedMaps: [String: String] = [:]
    /// Let `sharedMaps` replace existing files.
    package var replaceSharedMaps = false
    /// Main RAM in an unlinked file of this hugetlbfs mount (copy and lazy modes).
    package var hugetlbfs: String?
    /// The restored framebuffer's display file (copy and lazy modes).
    package var display: String?
    package var consoleLog: String?
    package var apiSocket: String?
    /// A page server's shared secret, certificates or plaintext.
    package var security = TransportSecurity.Options()
    /// `security` already loaded (a standby VMM loads it once, when it starts), else nil.
    package var preparedSecurity: TransportSecurity?
    package var reconnectTimeoutSeconds = 300
    /// Record the pages the guest touches in its first seconds as the snapshot's working set (lazy).
    package var recordWorkingSetSeconds: Double?
    /// Pages a lazy fault near the previous one brings in (default 16 locally, 1 from a page server).
    package var faultClusterPages: Int?
    /// Fetch the snapshot's working set at resume, if one was recorded (lazy).
    package var prefetch = true
    /// The store and chunk cache for an s3:// snapshot.
    package var objectStore: ObjectStoreAccess?
    /// Disk files, taps and a vsock socket replacing the saved VM's.
    package var overrides = DeviceOverrides()

    package init(snapshot: String) { self.snapshot = snapshot }

    /// Refuses options that do not go together, before anything is opened.
    package func validate() throws(VMMError) {
        func refuse(_ message: String) -> VMMError { .invalidRequest(message) }
        if RestoreSource.isObjectStore(snapshot) {
            guard memory != .map else {
                throw refuse("--memory map needs a local snapshot file; restore from an object store with --memory lazy or copy")
            }
            guard !verify else { throw refuse("--verify checks local snapshot files; chunks from an object store are checked as they arrive") }
            guard !trackDirtyPages else { throw refuse("--track-dirty-pages needs a local snapshot file as the diff parent") }
        }
        if RestoreSource.isPageServer(snapshot) {
            guard memory != .map else {
                throw refuse("--memory map needs a local snapshot file; restore from a page server with --memory lazy or copy")
            }
            guard !verify else { throw refuse("--verify checks local snapshot files; pages from a page server are checked as they arrive") }
            guard !trackDirtyPages else { throw refuse("--track-dirty-pages needs a local snapshot file as the diff parent") }
            if let conflict = security.conflict { throw refuse("a page server: \(conflict) (as `engram serve` was given)") }
        }
        if let recordWorkingSetSeconds {
            guard memory == .lazy else { throw refuse("--record-working-set needs --memory lazy") }
            guard recordWorkingSetSeconds > 0 && recordWorkingSetSeconds <= 600 else {
                throw refuse("--record-working-set \(recordWorkingSetSeconds): expected 0 to 600 seconds")
            }
        }
        if let faultClusterPages, !(1...512).contains(faultClusterPages) {
            throw refuse("--fault-cluster-pages \(faultClusterPages): expected 1 to 512")
        }
        if !sharedMaps.isEmpty && memory == .map {
            throw refuse("--shared-maps needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself")
        }
        if hugetlbfs != nil && memory == .map {
            throw refuse("--hugetlbfs needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself, mapped in 4 KiB pages")
        }
        if hugetlbfs != nil && sharedMaps["ram"] != nil {
            throw refuse("choose one backing for main RAM: --hugetlbfs or --shared-maps ...:ram")
        }
        if display != nil && memory == .map {
            throw refuse("--display needs --memory copy or lazy: a mapped restore's memory is the snapshot file itself")
        }
    }
}

/// An object store to restore from: a client, and the host's chunk cache.
package struct ObjectStoreAccess: Sendable {
    package var client: @Sendable () throws(VMMError) -> S3Client
    package var location: ObjectLocation
    package var cache: ChunkCachePlace
    package var cacheBytes: UInt64

    package init(client: @escaping @Sendable () throws(VMMError) -> S3Client, location: ObjectLocation, cache: ChunkCachePlace, cacheBytes: UInt64) {
        self.client = client
        self.location = location
        self.cache = cache
        self.cacheBytes = cacheBytes
    }
}

/// Where a restore from the object store keeps the chunks it fetches for later restores on this host.
package enum ChunkCachePlace: Sendable, Equatable {
    /// $XDG_CACHE_HOME/engram/chunks, or ~/.cache/engram/chunks.
    case standard
    case directory(String)
    /// Nowhere: every chunk comes from the store and nothing is written on this host (hosts that
    /// restore a snapshot once, or whose disks are slower than their network).
    case none
}

import LinuxSystem
import ObjectStore
import Paging
import SnapshotFormat
import Transport

/// Where a restore's snapshot comes from: a local file (and its diff parents), or a page
/// server (`tcp://HOST:PORT`). Either way: its regions, its machine state, and a page source.
struct RestoreOrigin {
    /// The snapshot as the user named it.
    let name: String
    let source: any PageSource
    let shapes: [SnapshotRegionShape]
    let state: [UInt8]
    let fingerprint: UInt64
    /// The local chain; nil for a page server.
    let chain: SnapshotChain?

    static let scheme = "tcp://"

    static func isRemote(_ name: String) -> Bool { name.hasPrefix(scheme) }

    /// Opens a local snapshot chain.
    init(chain: SnapshotChain, name: String) {
        self.name = name
        source = chain
        shapes = chain.regions.map(\.shape)
        state = chain.state
        fingerprint = chain.fingerprint
        self.chain = chain
    }

    /// Connects to the page server `name` names and reads its manifest.
    init(server name: String, secretFile: String, reconnectTimeoutSeconds: Int) throws {
        do {
            let endpoint = try Endpoint(parsing: String(name.dropFirst(Self.scheme.count)))
            let secret = try SharedSecret.load(path: secretFile)
            let connector = PageServerConnector(
                endpoint: endpoint, secret: secret, reconnectTimeoutMilliseconds: reconnectTimeoutSeconds * 1000,
                log: { Diagnostics.note($0) })
            let remote = try RemotePageSource(connector: connector)
            self.name = name
            source = remote
            shapes = remote.manifest.regions
            state = remote.manifest.state
            fingerprint = remote.manifest.fingerprint
            chain = nil
        } catch {
            throw CommandFailure("cannot restore from \(name): \(error)")
        }
    }

    /// Reads the manifest of a snapshot in an object store; pages come through the host's chunk cache.
    init(objectStore name: String, store: ObjectStoreOptions, cacheDirectory: String?, cacheBytes: UInt64) throws {
        let location = try store.location(name)
        let client = try store.client()
        do {
            let cache = try ChunkCache(directory: cacheDirectory ?? ChunkCache.defaultDirectory, maximumBytes: cacheBytes)
            let source = try ObjectSnapshotSource(client: client, location: location, cache: cache)
            self.name = name
            self.source = source
            shapes = source.manifest.shapes
            state = source.manifest.stateBytes
            fingerprint = source.manifest.fingerprint
            chain = nil
        } catch {
            client.shutdown()
            throw CommandFailure("cannot restore from \(name): \(error)")
        }
    }

    /// Files in the chain (1 for a page server: the server resolves its own chain).
    var fileCount: Int { chain?.files.count ?? 1 }
}

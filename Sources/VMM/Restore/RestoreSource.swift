import LinuxSystem
import ObjectStore
import Paging
import SnapshotFormat
import Transport

/// Where a restore's snapshot comes from: a local file (and its diff parents), a page server
/// (`tcp://HOST:PORT`) or an object store (`s3://BUCKET/NAME`). Either way: its regions, its
/// machine state, and a page source.
package struct RestoreSource {
    /// The snapshot as the user named it.
    package let name: String
    package let pages: any PageSource
    package let shapes: [SnapshotRegionShape]
    package let state: [UInt8]
    package let fingerprint: UInt64
    /// The local chain; nil for a page server or an object store.
    package let chain: SnapshotChain?

    package static let pageServerScheme = "tcp://"
    package static let objectStoreScheme = "s3://"

    package static func isPageServer(_ name: String) -> Bool { name.hasPrefix(pageServerScheme) }
    package static func isObjectStore(_ name: String) -> Bool { name.hasPrefix(objectStoreScheme) }

    /// Opens the local snapshot chain at `path`; with `verify`, checks every stored page first.
    /// Without it the CRC tables' checksums are left to the caller (`SnapshotChain.checkCRCTables`).
    package init(path: String, verify: Bool) throws(VMMError) {
        do throws(SnapshotFormatError) {
            let chain = try SnapshotChain(path: path, deferringCRCTables: true)
            if verify { try chain.verifyAllPages() }
            self.init(chain: chain, name: path)
        } catch { throw .failed(error.description) }
    }

    /// A local snapshot chain already open.
    package init(chain: SnapshotChain, name: String) {
        self.name = name
        pages = chain
        shapes = chain.regions.map(\.shape)
        state = chain.state
        fingerprint = chain.fingerprint
        self.chain = chain
    }

    /// Connects to the page server `name` names and reads its manifest, protected as `options`
    /// say (`prepared`: those options already loaded).
    package init(
        server name: String, security options: TransportSecurity.Options, prepared: TransportSecurity? = nil, reconnectTimeoutSeconds: Int
    ) throws(VMMError) {
        do {
            let endpoint = try Endpoint(parsing: String(name.dropFirst(Self.pageServerScheme.count)))
            let security = try prepared ?? TransportSecurity.load(options, sides: [.client])
            let connector = PageServerConnector(
                endpoint: endpoint, security: security, reconnectTimeoutMilliseconds: reconnectTimeoutSeconds * 1000,
                log: { Diagnostics.note($0) })
            let remote = try RemotePageSource(connector: connector)
            self.name = name
            pages = remote
            shapes = remote.manifest.regions
            state = remote.manifest.state
            fingerprint = remote.manifest.fingerprint
            chain = nil
        } catch {
            throw .failed("cannot restore from \(name): \(error)")
        }
    }

    /// Reads the manifest of a snapshot in an object store; pages come through the host's chunk
    /// cache. The client is shut down if the manifest cannot be read.
    package init(objectStore location: ObjectLocation, name: String, client: S3Client, cache: ChunkCache?) throws(VMMError) {
        do {
            let source = try ObjectSnapshotSource(client: client, location: location, cache: cache)
            self.name = name
            pages = source
            shapes = source.manifest.shapes
            state = source.manifest.stateBytes
            fingerprint = source.manifest.fingerprint
            chain = nil
        } catch {
            client.shutdown()
            throw .failed("cannot restore from \(name): \(error)")
        }
    }

    /// Files in the chain (1 for a page server or a store: they resolve their own chains).
    package var fileCount: Int { chain?.files.count ?? 1 }
}

import ArgumentParser
import LinuxSystem
import ObjectStore
import VMM

/// Where the object store is and which cache to use; credentials come from the usual AWS
/// environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).
struct ObjectStoreOptions: ParsableArguments {
    @Option(help: "The S3 endpoint, e.g. http://127.0.0.1:8333 (default: $AWS_ENDPOINT_URL_S3 or $AWS_ENDPOINT_URL).") var s3Endpoint: String?
    @Option(help: "The S3 region (default: $AWS_REGION, $AWS_DEFAULT_REGION or us-east-1).") var s3Region: String?

    static let scheme = "s3://"

    static func isObjectStore(_ name: String) -> Bool { name.hasPrefix(scheme) }

    /// A client for the configured store; a missing credential is one line, never a secret.
    func client() throws -> S3Client {
        do { return S3Client(configuration: try S3Configuration.fromEnvironment(endpoint: s3Endpoint, region: s3Region)) } catch {
            throw CommandFailure(error.description)
        }
    }

    /// What a restore of `snapshot` (s3://BUCKET/NAME) from this store needs: a client made on
    /// demand from `credentials`, the location, and the host's chunk cache.
    func access(_ snapshot: String, credentials: Credentials, cache: ChunkCacheOptions) throws -> ObjectStoreAccess {
        ObjectStoreAccess(
            client: { () throws(VMMError) in
                switch credentials {
                case .success(let configuration): return S3Client(configuration: configuration)
                case .failure(let error): throw .failed(error.description)
                }
            },
            location: try location(snapshot), cache: cache.place, cacheBytes: cache.chunkCacheSize.bytes)
    }

    /// The store's configuration, or why it has none.
    typealias Credentials = Result<S3Configuration, ObjectStoreError>

    /// For a VMM that lives on (restore, standby): reads the configuration now and removes the
    /// secret variables from the environment, so the secret stays only in the process's memory,
    /// not in /proc/PID/environ or the environment of processes it starts (fork children, a
    /// live update's new binary). A missing credential is reported when the store is first used.
    /// Read once per process: validation and the run both ask.
    func takeCredentials() -> Credentials {
        Self.taken.withLock { taken in
            if let taken { return taken }
            let credentials: Credentials
            do throws(ObjectStoreError) { credentials = .success(try S3Configuration.fromEnvironment(endpoint: s3Endpoint, region: s3Region)) } catch {
                credentials = .failure(error)
            }
            ProcessEnvironment.scrub(["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
            taken = credentials
            return credentials
        }
    }

    private static let taken = Locked<Credentials?>(nil)

    func location(_ text: String) throws -> ObjectLocation {
        do { return try ObjectLocation(parsing: text) } catch { throw CommandFailure(error.description) }
    }
}

/// The host's chunk cache for s3:// restores.
struct ChunkCacheOptions: ParsableArguments {
    @Option(help: "s3://: the host's chunk cache, shared by restores (default ~/.cache/engram/chunks).") var chunkCache: String?
    @Option(help: "s3://: the chunk cache's bound, bytes or with K/M/G suffix.") var chunkCacheSize = ByteSize(argument: "8G")!
    @Flag(help: "s3://: keep no chunk cache: every chunk comes from the store and nothing is written on this host.")
    var noChunkCache = false

    func validate() throws {
        if noChunkCache && chunkCache != nil { throw ValidationError("choose one: --chunk-cache DIR or --no-chunk-cache") }
    }

    var isGiven: Bool { chunkCache != nil || noChunkCache }

    var place: ChunkCachePlace {
        if noChunkCache { return .none }
        return chunkCache.map { .directory($0) } ?? .standard
    }
}

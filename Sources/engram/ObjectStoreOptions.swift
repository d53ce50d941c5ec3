import LinuxSystem
import ArgumentParser
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
    /// demand, the location, and the host's chunk cache.
    func access(_ snapshot: String, cacheDirectory: String?, cacheBytes: UInt64) throws -> ObjectStoreAccess {
        let store = self
        return ObjectStoreAccess(
            client: { () throws(VMMError) in
                do { return try store.client() } catch { throw .failed("\(error)") }
            },
            location: try location(snapshot), cacheDirectory: cacheDirectory, cacheBytes: cacheBytes)
    }

    func location(_ text: String) throws -> ObjectLocation {
        do { return try ObjectLocation(parsing: text) } catch { throw CommandFailure(error.description) }
    }
}

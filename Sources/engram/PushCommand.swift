import ArgumentParser
import ObjectStore
import SnapshotFormat
import VMM

/// `engram push SNAPSHOT s3://BUCKET/NAME`: stores a local snapshot (or diff chain) in an object store.
struct PushCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Store a snapshot in S3-compatible object storage, for `engram restore s3://BUCKET/NAME`.",
        discussion: """
            Memory goes up in 2 MiB chunks of non-zero pages, content-addressed: chunks the bucket already holds (from \
            any snapshot) are referenced, not uploaded again; new ones go into one pack object by multipart upload. \
            Credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN). \
            docs/OBJECT_STORE.md has the layout.
            """
    )

    @Argument(help: "The snapshot file (a full snapshot, or a diff whose parents are in its directory).") var snapshot: String
    @Argument(help: "Where to store it: s3://BUCKET/NAME.") var destination: String
    @OptionGroup var store: ObjectStoreOptions
    @Flag(help: "Create the bucket if it does not exist.") var createBucket = false

    func validate() throws {
        guard ObjectStoreOptions.isObjectStore(destination) else { throw ValidationError("the destination must be s3://BUCKET/NAME") }
    }

    func run() throws {
        let chain: SnapshotChain
        do { chain = try SnapshotChain(path: snapshot) } catch { throw CommandFailure(error.description) }
        try Self.push(chain, to: destination, store: store, createBucket: createBucket)
    }

    /// Uploads `chain` and reports what it cost and what deduplication saved.
    static func push(_ chain: SnapshotChain, to destination: String, store: ObjectStoreOptions, createBucket: Bool) throws {
        let location = try store.location(destination)
        let client = try store.client()
        defer { client.shutdown() }
        do {
            if createBucket { try client.createBucket(location.bucket) }
            let summary = try ObjectSnapshotUploader.push(chain, to: location, client: client)
            let usage = try ObjectSnapshotUsage.measure(bucket: location.bucket, client: client)
            Diagnostics.note("pushed \(chain.path) to \(destination): \(summary.chunks) chunks, \(summary.reusedChunks) already stored; "
                + "\(MiB(summary.logicalBytes)) of non-zero memory, \(MiB(summary.uploadedBytes)) uploaded")
            Diagnostics.note("bucket \(location.bucket): \(usage.snapshots) snapshots holding \(MiB(usage.logicalBytes)) of non-zero memory "
                + "stored in \(MiB(usage.storedBytes)) (\(usage.ratioText) of the sum)")
        } catch let error as ObjectSnapshotError {
            throw CommandFailure(error.description)
        } catch let error as ObjectStoreError {
            throw CommandFailure(error.description)
        }
    }

    static func MiB(_ bytes: UInt64) -> String { "\(String(format1: Double(bytes) / 1_048_576)) MiB" }
}

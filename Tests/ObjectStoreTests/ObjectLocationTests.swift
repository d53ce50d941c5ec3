import Testing
@testable import ObjectStore

/// s3://BUCKET/KEY as flags and snapshot manifests give it.
@Suite struct ObjectLocationTests {
    @Test func parsesBucketAndKey() throws {
        let location = try ObjectLocation(parsing: "s3://engram-snapshots/vm1/2026-11-22/manifest")
        #expect(location.bucket == "engram-snapshots")
        #expect(location.key == "vm1/2026-11-22/manifest")
        #expect(location.description == "s3://engram-snapshots/vm1/2026-11-22/manifest")
        let chunk = try ObjectLocation(parsing: "s3://engram-snapshots/vm1/2026-11-22/manifest/chunk-0001")
        #expect(location.appending("chunk-0001") == chunk)
    }

    @Test func trailingSlashNamesThePrefix() throws {
        let prefix = try ObjectLocation(parsing: "s3://bucket.with.dots/snapshots/")
        #expect(prefix.key == "snapshots")
        #expect(prefix.appending("a").key == "snapshots/a")
        let bucket = try ObjectLocation(parsing: "s3://my-bucket", allowingEmptyKey: true)
        #expect(bucket.key.isEmpty && bucket.description == "s3://my-bucket")
        #expect(bucket.appending("a").key == "a")
        let withSlash = try ObjectLocation(parsing: "s3://my-bucket/", allowingEmptyKey: true)
        #expect(withSlash == bucket)
    }

    @Test(arguments: [
        ("http://bucket/key", "s3://"),
        ("s3://bucket", "no object key"),
        ("s3://bucket/", "no object key"),
        ("s3:///key", "no bucket name"),
        ("s3://ab/key", "3 to 63"),
        ("s3://\(String(repeating: "a", count: 64))/key", "3 to 63"),
        ("s3://Bucket/key", "lower-case"),
        ("s3://bucket_1/key", "lower-case"),
        ("s3://-bucket/key", "starts and ends"),
        ("s3://bucket-/key", "starts and ends"),
        ("s3://my..bucket/key", "adjacent periods"),
        ("s3://my.-bucket/key", "'-' next to a '.'"),
        ("s3://192.168.5.4/key", "IP address"),
        ("s3://xn--bucket/key", "xn--"),
        ("s3://bucket/a//b", "empty path segment"),
        ("s3://bucket/a/../b", "'..'"),
        ("s3://bucket/./b", "'.'"),
        ("s3://bucket//key", "start with '/'"),
        ("s3://bucket/a\u{01}b", "control characters"),
        ("s3://bucket/\(String(repeating: "k", count: 1025))", "1024 bytes"),
    ])
    func refusesWhatIsNotALocation(text: String, reason: String) {
        let error = #expect(throws: ObjectStoreError.self) { _ = try ObjectLocation(parsing: text) }
        guard case .invalidLocation(let given, let why) = error else {
            Issue.record("expected invalidLocation for \(text), got \(String(describing: error))")
            return
        }
        #expect(given == text)
        #expect(why.contains(reason), "\(text): \(why)")
        #expect(String(describing: error!).contains(reason))
    }
}

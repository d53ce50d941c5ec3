import Foundation
import ObjectStore
import TestSupport

/// One SeaweedFS shared by the tests that only read and write (each in its own bucket), so the
/// suite pays its start-up once; tests that disturb the servers start their own.
final class SharedSeaweedFS: Sendable {
    let directory: TemporaryDirectory
    let store: SeaweedFS

    private init() throws {
        directory = TemporaryDirectory()
        store = try SeaweedFS.start(directory: directory.url)
    }

    /// Started on first use; killed and removed at process exit.
    static let instance: Result<SharedSeaweedFS, any Error> = Result { try SharedSeaweedFS() }

    static func get() throws -> SharedSeaweedFS { try instance.get() }
}

extension SeaweedFS {
    /// A client for this store, with its identity unless `secret` overrides the secret key.
    func client(secret: String? = nil, retry: RetryPolicy = .default) -> S3Client {
        S3Client(configuration: S3Configuration(endpoint: endpoint, accessKeyID: accessKey, secretAccessKey: secret ?? secretKey),
                 retry: retry)
    }
}

enum ObjectStoreFixture {
    /// A bucket name no other test uses.
    static func uniqueBucket(_ label: String) -> String {
        "engram-\(label)-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// `count` bytes of a repeatable pattern that differs at every offset of a page.
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }
}

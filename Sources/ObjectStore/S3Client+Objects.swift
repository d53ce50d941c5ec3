import Foundation
import NIOHTTP1

/// The object operations the snapshot store needs, each one S3 request (listing: one per page).
extension S3Client {
    /// Creates `bucket`; succeeds if it exists already and is owned by these credentials.
    package func createBucket(_ bucket: String) throws(ObjectStoreError) {
        if let reason = ObjectLocation.bucketProblem(bucket) { throw .invalidLocation("s3://\(bucket)", reason: reason) }
        let body = configuration.region == "us-east-1" ? [] : S3Replies.createBucketBody(region: configuration.region)
        let request = S3Request(method: .PUT, bucket: bucket, key: "", body: body, operation: "CreateBucket")
        try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<Void> in
            if (200..<300).contains(response.status) { return .done(()) }
            let (code, message) = S3Replies.error(response.body, fallback: response.reason)
            if code == "BucketAlreadyOwnedByYou" { return .done(()) }
            throw .refused(nil, status: response.status, code: code, message: "bucket \(bucket): \(message)")
        }
    }

    /// Stores `body` as the object, replacing any object there. The body's SHA-256 is signed, so
    /// the store rejects a body damaged on the way.
    package func putObject(_ location: ObjectLocation, body: [UInt8]) throws(ObjectStoreError) {
        let request = S3Request(method: .PUT, bucket: location.bucket, key: location.key, body: body,
                                location: location, operation: "PUT")
        try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<Void> in
            guard (200..<300).contains(response.status) else { throw refusal(response, location) }
            return .done(())
        }
    }

    /// The whole object.
    package func getObject(_ location: ObjectLocation) throws(ObjectStoreError) -> [UInt8] {
        let request = S3Request(method: .GET, bucket: location.bucket, key: location.key, location: location, operation: "GET")
        return try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<[UInt8]> in
            if response.status == 404 { throw missing(response, location) }
            guard response.status == 200 else { throw refusal(response, location) }
            return .done(response.body)
        }
    }

    /// Exactly the bytes in `range` of the object (a ranged GET); an empty range reads nothing.
    /// A range reaching past the object's end fails as refused with S3's InvalidRange rather than
    /// returning fewer bytes, since a short page would be a corrupt page.
    package func getObject(_ location: ObjectLocation, range: Range<UInt64>) throws(ObjectStoreError) -> [UInt8] {
        if range.isEmpty { return [] }
        return try getObject(location, range: range, pieces: [Int(range.upperBound - range.lowerBound)])[0]
    }

    /// The bytes in `range` of the object, in pieces of `lengths` (which add up to the range's
    /// length): a run of chunks fetched with one ranged GET, each landing in an array of its own.
    package func getObject(_ location: ObjectLocation, range: Range<UInt64>, pieces lengths: [Int]) throws(ObjectStoreError) -> [[UInt8]] {
        guard lengths.reduce(0, +) == Int(range.upperBound - range.lowerBound), lengths.allSatisfy({ $0 > 0 }) else {
            throw .malformed("\(location): pieces of \(lengths.reduce(0, +)) bytes for the range \(range)")
        }
        var request = S3Request(method: .GET, bucket: location.bucket, key: location.key,
                                headers: [(name: "Range", value: "bytes=\(range.lowerBound)-\(range.upperBound - 1)")],
                                location: location, operation: "GET")
        request.pieceLengths = lengths
        request.keptRange = range
        return try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<[[UInt8]]> in
            switch response.status {
            case 206:
                if response.pieces.map(\.count) == lengths { return .done(response.pieces) }
                if let total = Self.totalLength(contentRange: response.header("Content-Range")), total < range.upperBound {
                    throw Self.pastTheEnd(location, range: range, size: total)
                }
                throw .malformed("\(location): \(response.pieces.reduce(0) { $0 + $1.count }) bytes for the \(range.upperBound - range.lowerBound)-byte range \(range)")
            case 200:
                // A store that ignores Range sends the whole object: the range was kept from it.
                guard response.bodyBytesSent >= range.upperBound, UInt64(response.body.count) == range.upperBound - range.lowerBound else {
                    throw Self.pastTheEnd(location, range: range, size: response.bodyBytesSent)
                }
                var start = 0
                return .done(lengths.map { length in
                    defer { start += length }
                    return Array(response.body[start..<start + length])
                })
            case 404:
                throw missing(response, location)
            default:
                throw refusal(response, location)
            }
        }
    }

    /// The object's size in bytes, or nil when there is no such object.
    package func headObject(_ location: ObjectLocation) throws(ObjectStoreError) -> UInt64? {
        let request = S3Request(method: .HEAD, bucket: location.bucket, key: location.key, location: location, operation: "HEAD")
        return try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<UInt64?> in
            if response.status == 404 { return .done(nil) }
            guard response.status == 200 else { throw refusal(response, location) }
            guard let text = response.header("Content-Length"), let size = UInt64(text) else {
                throw .malformed("HEAD \(location): no Content-Length")
            }
            return .done(size)
        }
    }

    /// Every object whose key starts with `prefix`, with its size, in key order (ListObjectsV2,
    /// all pages).
    package func listObjects(bucket: String, prefix: String) throws(ObjectStoreError) -> [(key: String, size: UInt64)] {
        if let reason = ObjectLocation.bucketProblem(bucket) { throw .invalidLocation("s3://\(bucket)/\(prefix)", reason: reason) }
        var objects: [(key: String, size: UInt64)] = []
        var token: String?
        var seenTokens: Set<String> = []
        repeat {
            var query: [(name: String, value: String)] = [(name: "list-type", value: "2"), (name: "prefix", value: prefix)]
            if let token { query.append((name: "continuation-token", value: token)) }
            let request = S3Request(method: .GET, bucket: bucket, key: "", query: query, operation: "ListObjectsV2")
            let page = try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<S3Replies.ListPage> in
                guard response.status == 200 else {
                    throw refusal(response, try? ObjectLocation(bucket: bucket, key: ""))
                }
                return .done(try S3Replies.listPage(response.body))
            }
            objects += page.objects
            token = page.continuationToken
            if let token, !seenTokens.insert(token).inserted {
                throw .malformed("ListObjectsV2 of s3://\(bucket)/\(prefix) repeats a continuation token")
            }
        } while token != nil
        return objects
    }

    /// Deletes the object; deleting one that is not there succeeds, as in S3, so a retried
    /// delete whose first reply was lost does not fail.
    package func deleteObject(_ location: ObjectLocation) throws(ObjectStoreError) {
        let request = S3Request(method: .DELETE, bucket: location.bucket, key: location.key, location: location, operation: "DELETE")
        try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<Void> in
            if (200..<300).contains(response.status) { return .done(()) }
            if response.status == 404, S3Replies.error(response.body, fallback: "").code != "NoSuchBucket" { return .done(()) }
            throw refusal(response, location)
        }
    }

    /// Starts a multipart upload to `location`; nothing is visible there until it completes.
    package func startMultipartUpload(_ location: ObjectLocation) throws(ObjectStoreError) -> MultipartUpload {
        let request = S3Request(method: .POST, bucket: location.bucket, key: location.key,
                                query: [(name: "uploads", value: "")], location: location, operation: "CreateMultipartUpload")
        let uploadID = try perform(request) { (response, _) throws(ObjectStoreError) -> Verdict<String> in
            guard response.status == 200 else { throw refusal(response, location) }
            return .done(try S3Replies.uploadID(response.body))
        }
        return MultipartUpload(client: self, location: location, uploadID: uploadID)
    }

    /// A 404 as notFound, unless it is about the bucket (a configuration mistake worth its own message).
    func missing(_ response: S3Response, _ location: ObjectLocation) -> ObjectStoreError {
        let (code, _) = S3Replies.error(response.body, fallback: response.reason)
        return code == "NoSuchBucket" ? refusal(response, location) : .notFound(location)
    }

    /// The total after the '/' of "bytes 0-9/1234", if known.
    static func totalLength(contentRange: String?) -> UInt64? {
        guard let text = contentRange, let slash = text.lastIndex(of: "/") else { return nil }
        return UInt64(text[text.index(after: slash)...])
    }

    static func pastTheEnd(_ location: ObjectLocation, range: Range<UInt64>, size: UInt64) -> ObjectStoreError {
        .refused(location, status: 416, code: "InvalidRange",
                 message: "the object has \(size) bytes; the range \(range.lowerBound)..<\(range.upperBound) reaches past its end")
    }
}

import LinuxSystem
import NIOHTTP1

/// One multipart upload: parts ≥ 5 MiB except the last, numbered from 1. Parts may be uploaded
/// from several threads at once; `complete()` stitches them in number order.
///
/// For snapshot objects too large for one PUT: each part is retried on its own, so a failure
/// late in a large upload costs one part, not the whole object.
package final class MultipartUpload: Sendable {
    package let location: ObjectLocation
    package let uploadID: String
    private let client: S3Client
    /// ETag and size of each uploaded part, by number.
    private let parts = Locked<[Int: (etag: String, size: Int)]>([:])

    /// S3's smallest part but for the last one.
    package static let minimumPartSize = 5 << 20

    init(client: S3Client, location: ObjectLocation, uploadID: String) {
        self.client = client
        self.location = location
        self.uploadID = uploadID
    }

    /// Uploads part `number` (1 to 10000); uploading a number again replaces that part.
    package func uploadPart(_ number: Int, body: [UInt8]) throws(ObjectStoreError) {
        guard (1...10_000).contains(number) else {
            throw .refused(location, status: 400, code: "InvalidArgument", message: "part number \(number) is not 1 to 10000")
        }
        let request = S3Request(method: .PUT, bucket: location.bucket, key: location.key,
                                query: [(name: "partNumber", value: "\(number)"), (name: "uploadId", value: uploadID)],
                                body: body, location: location, operation: "UploadPart \(number)")
        let location = self.location
        let etag = try client.perform(request) { [client] (response, _) throws(ObjectStoreError) -> S3Client.Verdict<String> in
            guard response.status == 200 else { throw client.refusal(response, location) }
            guard let etag = response.header("ETag"), !etag.isEmpty else { throw .malformed("UploadPart \(number) of \(location): no ETag") }
            return .done(etag)
        }
        parts.withLock { $0[number] = (etag: etag, size: body.count) }
    }

    /// Makes the object from the uploaded parts. Checks the 5 MiB rule first, as S3 would at
    /// this point, so a store that does not enforce it does not hide the mistake.
    package func complete() throws(ObjectStoreError) {
        let uploaded = parts.withLock { $0 }.sorted { $0.key < $1.key }
        guard !uploaded.isEmpty else {
            throw .refused(location, status: 400, code: "MalformedXML", message: "no parts were uploaded")
        }
        for (number, part) in uploaded.dropLast() where part.size < Self.minimumPartSize {
            throw .refused(location, status: 400, code: "EntityTooSmall",
                           message: "part \(number) has \(part.size) bytes; every part but the last needs at least 5 MiB")
        }
        let body = S3Replies.completeBody(uploaded.map { (number: $0.key, etag: $0.value.etag) })
        let request = S3Request(method: .POST, bucket: location.bucket, key: location.key,
                                query: [(name: "uploadId", value: uploadID)], body: body,
                                location: location, operation: "CompleteMultipartUpload")
        let location = self.location
        try client.perform(request) { [client] (response, attempt) throws(ObjectStoreError) -> S3Client.Verdict<Void> in
            if response.status == 200 {
                // S3 may fail a completion after sending 200: the error is then the body.
                let (code, message) = S3Replies.error(response.body, fallback: "")
                if code.isEmpty { return .done(()) }
                if code == "InternalError" || code == "SlowDown" { return .retry("HTTP 200 \(code): \(message)") }
                throw .refused(location, status: 200, code: code, message: message)
            }
            let (code, _) = S3Replies.error(response.body, fallback: "")
            // An earlier attempt whose reply was lost may have completed the upload already.
            if code == "NoSuchUpload", attempt > 1, (try? client.headObject(location)) != nil { return .done(()) }
            throw client.refusal(response, location)
        }
    }

    /// Discards the upload and its parts, best effort and for at most 10 s: a failure here leaves
    /// parts for the store's lifecycle rules to clean, which is no reason to fail, or hold up,
    /// the caller's own error path.
    package func abort() {
        let request = S3Request(method: .DELETE, bucket: location.bucket, key: location.key,
                                query: [(name: "uploadId", value: uploadID)], location: location, operation: "AbortMultipartUpload")
        _ = try? client.perform(request, giveUpAfterMilliseconds: 10_000) { (_, _) throws(ObjectStoreError) -> S3Client.Verdict<Void> in
            .done(())
        }
    }
}

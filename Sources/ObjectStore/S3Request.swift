import NIOHTTP1

/// One S3 operation as the client sends it, before signing: re-signed on every attempt so a
/// retry long after the first try carries a fresh x-amz-date.
struct S3Request: Sendable {
    var method: HTTPMethod
    /// The bucket ("" for the service itself) and key ("" for the bucket itself), not encoded.
    var bucket: String
    var key: String
    /// Query parameters, not encoded; a value of "" is sent as a bare name ("?uploads").
    var query: [(name: String, value: String)] = []
    /// Extra headers to sign and send (Range).
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// What errors name: the object the operation is about.
    var location: ObjectLocation?
    /// What the operation is, for messages ("GET", "ListObjectsV2").
    var operation: String
    /// A ranged GET's body split into pieces of these lengths as it arrives (S3Response.pieces),
    /// so a run of chunks lands in one array each, copied once; nil: one body.
    var pieceLengths: [Int]? = nil
    /// A ranged GET's range: from a store that ignores Range and sends the whole object (200),
    /// only these bytes are kept, so each fetch holds its range, not a whole pack.
    var keptRange: Range<UInt64>? = nil

    /// /bucket/key, URI-encoded once: the path both signed and sent.
    var encodedPath: String {
        var path = "/"
        if !bucket.isEmpty {
            path += URIEncoding.encode(bucket)
            if !key.isEmpty { path += "/" + URIEncoding.encodePath(key) }
        }
        return path
    }

    /// The query as sent: encoded like the canonical query, in the same order.
    var encodedQuery: String {
        let pairs: [String] = URIEncoding.encodedSorted(query).map { (pair: (name: String, value: String)) -> String in
            pair.value.isEmpty ? pair.name : pair.name + "=" + pair.value
        }
        return pairs.joined(separator: "&")
    }
}

/// A reply: status, headers, whole body (or, for a 206 to a request with piece lengths, its pieces).
struct S3Response: Sendable {
    var status: Int
    var reason: String
    var headers: HTTPHeaders
    var body: [UInt8]
    var pieces: [[UInt8]] = []
    /// The body's length as sent (`body` holds only the kept range of a ranged GET's 200).
    var bodyBytesSent: UInt64 = 0

    func header(_ name: String) -> String? { headers.first(name: name) }
}

import Crypto
import Foundation

/// AWS Signature Version 4 for S3 (HMAC-SHA256), computed from the request's parts.
///
/// Hand-written rather than taken from an SDK: the client needs only the header form for one
/// service, and each step (canonical request, string to sign, key, signature) is visible to the
/// known-answer test from AWS's documentation.
struct SigV4Signer: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let accessKeyID: String
    private let secretAccessKey: String
    let sessionToken: String?
    let region: String
    let service: String

    init(accessKeyID: String, secretAccessKey: String, sessionToken: String?, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.service = service
    }

    /// The headers a request gains by being signed.
    struct Signed: Sendable {
        /// x-amz-date, x-amz-content-sha256, x-amz-security-token (with a session token) and
        /// Authorization, in that order.
        let headers: [(name: String, value: String)]
        /// The canonical request and string to sign, for tests: neither holds a secret.
        let canonicalRequest: String
        let stringToSign: String
        let signature: String
    }

    /// Signs a request. `encodedPath` is the path as it goes on the wire (URI-encoded once),
    /// `query` the decoded query parameters, `headers` everything else that is sent and should be
    /// signed (at least Host), `payloadHash` the hex SHA-256 of the body (or UNSIGNED-PAYLOAD).
    func sign(method: String, encodedPath: String, query: [(name: String, value: String)],
              headers: [(name: String, value: String)], payloadHash: String, date: Date) -> Signed {
        let (amzDate, day) = Self.timestamps(date)
        var all = headers
        all.append((name: "x-amz-date", value: amzDate))
        all.append((name: "x-amz-content-sha256", value: payloadHash))
        if let sessionToken { all.append((name: "x-amz-security-token", value: sessionToken)) }

        let canonicalHeaders = all
            .map { (name: $0.name.lowercased(), value: Self.trimmed($0.value)) }
            .sorted { $0.name < $1.name }
        let signedHeaders = canonicalHeaders.map(\.name).joined(separator: ";")
        let canonicalRequest = [
            method,
            encodedPath.isEmpty ? "/" : encodedPath,
            Self.canonicalQuery(query),
            canonicalHeaders.map { "\($0.name):\($0.value)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Self.hexSHA256(Array(canonicalRequest.utf8))].joined(separator: "\n")
        let signature = Self.hex(Self.hmac(key: signingKey(day: day), Array(stringToSign.utf8)))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope),SignedHeaders=\(signedHeaders),Signature=\(signature)"

        var added: [(name: String, value: String)] = [
            (name: "x-amz-date", value: amzDate), (name: "x-amz-content-sha256", value: payloadHash),
        ]
        if let sessionToken { added.append((name: "x-amz-security-token", value: sessionToken)) }
        added.append((name: "Authorization", value: authorization))
        return Signed(headers: added, canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature)
    }

    /// The key for one day: HMAC chained over date, region, service and "aws4_request".
    private func signingKey(day: String) -> [UInt8] {
        var key = Self.hmac(key: Array("AWS4\(secretAccessKey)".utf8), Array(day.utf8))
        key = Self.hmac(key: key, Array(region.utf8))
        key = Self.hmac(key: key, Array(service.utf8))
        return Self.hmac(key: key, Array("aws4_request".utf8))
    }

    /// Names and values encoded, sorted by encoded name then value, as name=value joined by '&'.
    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        let pairs: [String] = URIEncoding.encodedSorted(query).map { (pair: (name: String, value: String)) -> String in
            pair.name + "=" + pair.value
        }
        return pairs.joined(separator: "&")
    }

    /// The hex SHA-256 of `bytes` (the payload hash and the canonical request's hash).
    static func hexSHA256(_ bytes: [UInt8]) -> String { hex(Array(SHA256.hash(data: bytes))) }

    /// Leading and trailing spaces dropped, inner runs of spaces made one.
    private static func trimmed(_ value: String) -> String {
        value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }

    /// "20130524T000000Z" and "20130524" for `date`, in UTC.
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ value: Int?) -> String { let v = value ?? 0; return v < 10 ? "0\(v)" : "\(v)" }
        let day = "\(c.year ?? 1970)\(two(c.month))\(two(c.day))"
        return ("\(day)T\(two(c.hour))\(two(c.minute))\(two(c.second))Z", day)
    }

    private static func hmac(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    var description: String { "SigV4 signer for \(accessKeyID) in \(region)/\(service)" }
    var debugDescription: String { description }
}

/// `dump()` of a signer (or of anything holding one) shows no secret.
extension SigV4Signer: CustomReflectable {
    var customMirror: Mirror {
        Mirror(self, children: ["accessKeyID": accessKeyID, "region": region, "service": service], displayStyle: .struct)
    }
}

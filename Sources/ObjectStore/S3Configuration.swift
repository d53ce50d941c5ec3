import Foundation

/// Endpoint, region and credentials: from flags or the usual AWS environment variables
/// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION,
/// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL). Path-style addressing. Its description never shows the secret.
///
/// Path-style (http://host:port/bucket/key) rather than virtual-hosted style because
/// S3-compatible stores on a plain host and port (SeaweedFS, MinIO) have no per-bucket DNS names.
package struct S3Configuration: Sendable, CustomStringConvertible {
    /// "http://127.0.0.1:8333" (https too); no path, no trailing slash.
    package var endpoint: String
    /// The region requests are signed for; "us-east-1" unless set.
    package var region: String
    package var accessKeyID: String
    package var secretAccessKey: String
    package var sessionToken: String?

    package init(endpoint: String, region: String = "us-east-1", accessKeyID: String, secretAccessKey: String,
                 sessionToken: String? = nil) {
        self.endpoint = endpoint
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The configuration from this process's environment, with `endpoint` and `region` (flags)
    /// taking precedence over the variables.
    package static func fromEnvironment(endpoint: String? = nil, region: String? = nil) throws(ObjectStoreError) -> S3Configuration {
        try fromEnvironment(endpoint: endpoint, region: region, environment: ProcessInfo.processInfo.environment)
    }

    /// The configuration from the given variables (tests pass their own instead of the process's).
    package static func fromEnvironment(endpoint: String? = nil, region: String? = nil,
                                        environment: [String: String]) throws(ObjectStoreError) -> S3Configuration {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else { return nil }
            return text
        }
        guard let accessKeyID = value("AWS_ACCESS_KEY_ID") else { throw .credentials("AWS_ACCESS_KEY_ID is not set") }
        guard let secret = value("AWS_SECRET_ACCESS_KEY") else { throw .credentials("AWS_SECRET_ACCESS_KEY is not set") }
        let region = region ?? value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw .credentials("region \(region.debugDescription) is not a region name")
        }
        let given = endpoint ?? value("AWS_ENDPOINT_URL_S3") ?? value("AWS_ENDPOINT_URL") ?? "https://s3.\(region).amazonaws.com"
        let configuration = S3Configuration(
            endpoint: try checkedEndpoint(given), region: region, accessKeyID: accessKeyID,
            secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
        return configuration
    }

    /// `text` as scheme://host[:port], or why it is not one. A path would be prepended to every
    /// key and change what is signed, so it is refused rather than guessed at.
    package static func checkedEndpoint(_ text: String) throws(ObjectStoreError) -> String {
        var endpoint = text
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard let parts = EndpointParts(endpoint) else {
            throw .credentials("endpoint \(text.debugDescription) is not http://HOST[:PORT] or https://HOST[:PORT]")
        }
        return parts.text
    }

    /// Everything but the secret and the token, which are only said to be present.
    package var description: String {
        let token = sessionToken == nil ? "" : ", session token set"
        return "S3 endpoint \(endpoint), region \(region), access key \(accessKeyID), secret key set\(token)"
    }
}

/// An endpoint split into what the signer and the HTTP client need.
struct EndpointParts: Sendable {
    let secure: Bool
    let host: String
    let port: Int?

    /// Parses scheme://host[:port] (IPv6 hosts in brackets); nil for anything else.
    init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("http://") {
            secure = false
            rest = text.dropFirst("http://".count)
        } else if text.hasPrefix("https://") {
            secure = true
            rest = text.dropFirst("https://".count)
        } else {
            return nil
        }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("?"), !rest.contains("@"), !rest.contains("#") else { return nil }
        var hostPart = rest
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            hostPart = rest[...close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = rest.lastIndex(of: ":") {
            hostPart = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        }
        guard !hostPart.isEmpty, hostPart != "[]" else { return nil }
        host = String(hostPart).lowercased()
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port) else { return nil }
            self.port = port
        } else {
            port = nil
        }
    }

    /// The Host header: the port only when it is not the scheme's default, as HTTP clients send it.
    var hostHeader: String {
        guard let port, port != (secure ? 443 : 80) else { return host }
        return "\(host):\(port)"
    }

    var text: String { (secure ? "https://" : "http://") + hostHeader }
}

/// `dump()` and debugger views show what `description` shows: no secret, no token.
extension S3Configuration: CustomReflectable, CustomDebugStringConvertible {
    package var customMirror: Mirror {
        Mirror(self, children: [
            "endpoint": endpoint, "region": region, "accessKeyID": accessKeyID,
            "secretAccessKey": "(hidden)", "sessionToken": sessionToken == nil ? "(none)" : "(hidden)",
        ], displayStyle: .struct)
    }

    package var debugDescription: String { description }
}

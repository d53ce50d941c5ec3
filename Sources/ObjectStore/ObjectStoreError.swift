/// Why an object-store call failed, in words an operator can act on.
///
/// No case ever carries the secret key, the session token or an Authorization header: every
/// message here may end up in a log or on a terminal.
package enum ObjectStoreError: Error, CustomStringConvertible, Equatable {
    /// The text given as an s3:// location is not one (the text, and why).
    case invalidLocation(String, reason: String)
    /// Credentials or endpoint settings are missing or unusable, e.g. "AWS_ACCESS_KEY_ID is not set".
    case credentials(String)
    /// The object (or, for a HEAD, its bucket) does not exist.
    case notFound(ObjectLocation)
    /// The store answered with an error that retrying will not fix: the HTTP status and S3's
    /// own Code and Message from the error body.
    case refused(ObjectLocation?, status: Int, code: String, message: String)
    /// The store could not be reached or kept failing transiently until the retry policy gave up.
    case unavailable(endpoint: String, reason: String, attempts: Int)
    /// A response that does not parse as what S3 sends.
    case malformed(String)

    package var description: String {
        switch self {
        case .invalidLocation(let text, let reason):
            return "not an object location: \(text.debugDescription): \(reason)"
        case .credentials(let reason):
            return "object store credentials: \(reason)"
        case .notFound(let location):
            return "\(location): no such object"
        case .refused(let location, let status, let code, let message):
            let subject = location.map { "\($0)" } ?? "object store"
            let what = code.isEmpty ? "HTTP \(status)" : "HTTP \(status) \(code)"
            let detail = message.isEmpty ? "" : ": \(message)"
            return "\(subject): refused by the store (\(what))\(detail)\(Self.hint(code: code, status: status))"
        case .unavailable(let endpoint, let reason, let attempts):
            let tries = attempts == 1 ? "1 attempt" : "\(attempts) attempts"
            return "object store at \(endpoint) unavailable after \(tries): \(reason)"
        case .malformed(let reason):
            return "object store sent a malformed response: \(reason)"
        }
    }

    /// What to check for the refusals people meet most, so the message points at the cause.
    private static func hint(code: String, status: Int) -> String {
        switch code {
        case "SignatureDoesNotMatch":
            return " (check the secret access key, AWS_SECRET_ACCESS_KEY)"
        case "InvalidAccessKeyId":
            return " (check the access key ID, AWS_ACCESS_KEY_ID)"
        case "RequestTimeTooSkewed":
            return " (this machine's clock is too far from the store's)"
        case "NoSuchBucket":
            return " (create the bucket first)"
        default:
            return status == 403 && code.isEmpty ? " (check the access key and secret)" : ""
        }
    }
}

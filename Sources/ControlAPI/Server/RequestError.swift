/// Why a request got no success answer; each case has its HTTP status and a one-line message.
///
/// Route handlers throw it to choose a status (an invalid body is 400); the router also maps a
/// thrown `VMControlError` through `.vm` and anything else to 500.
package enum RequestError: Error, Equatable, CustomStringConvertible {
    /// The bytes on the connection were not an HTTP/1.1 request. 400.
    case malformedRequest(reason: String)
    /// The route expects a JSON body and this one does not decode. 400.
    case invalidBody(reason: String)
    /// No route has this path. 404.
    case notFound(path: String)
    /// The path exists but not with this method. 405, with an `Allow` header.
    case methodNotAllowed(method: String, path: String, allowed: [String])
    /// The body is longer than the server accepts. 413.
    case bodyTooLarge(limitInBytes: Int)
    /// The machine refused (400, 409) or failed (500) the request.
    case vm(VMControlError)
    /// The server is stopping and takes no new requests. 503.
    case unavailable
    /// Anything else that went wrong while answering. 500.
    case internalFailure(reason: String)

    /// The HTTP status code of the answer.
    package var status: Int {
        switch self {
        case .malformedRequest, .invalidBody, .vm(.invalidRequest): 400
        case .notFound: 404
        case .methodNotAllowed: 405
        case .bodyTooLarge: 413
        case .vm(.invalidState), .vm(.conflict): 409
        case .vm(.failed): 500
        case .unavailable: 503
        case .internalFailure: 500
        }
    }

    package var description: String {
        switch self {
        case .malformedRequest(let reason): "malformed HTTP request: \(reason)"
        case .invalidBody(let reason): "invalid JSON body: \(reason)"
        case .notFound(let path): "no such resource: \(path)"
        case .methodNotAllowed(let method, let path, let allowed):
            "\(method) is not allowed on \(path); use \(allowed.joined(separator: " or "))"
        case .bodyTooLarge(let limit): "request body is larger than \(limit) bytes"
        case .vm(let error): error.description
        case .unavailable: "the VMM is shutting down"
        case .internalFailure(let reason): "internal error: \(reason)"
        }
    }
}

import Foundation

/// An HTTP answer: status and JSON body, and work to do once it has been sent.
package struct Response: Sendable {
    package var status: Int
    package var body: [UInt8]
    /// Runs after the response is written (e.g. shutting the VM down once the client has its answer).
    package var afterSending: (@Sendable () -> Void)?

    package init(status: Int, body: [UInt8], afterSending: (@Sendable () -> Void)? = nil) {
        self.status = status
        self.body = body
        self.afterSending = afterSending
    }

    /// A 200 with `value` as JSON.
    package static func json(_ value: some Encodable, status: Int = 200) -> Response {
        Response(status: status, body: (try? JSONCoding.encoder.encode(value)).map(Array.init) ?? [])
    }

    /// A JSON error `{"error": message}`.
    package static func error(_ status: Int, _ message: String) -> Response {
        json(["error": message], status: status)
    }
}

/// snake_case JSON, as Firecracker's and Cloud Hypervisor's APIs use.
package enum JSONCoding {
    package static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    package static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}

/// A table of (method, path) → handler, kept apart from the socket plumbing so it is testable alone.
package struct Router: Sendable {
    package typealias Handler = @Sendable (_ body: [UInt8]) -> Response

    private var routes: [String: [String: Handler]] = [:]

    package init() {}

    /// Adds a route; a later one for the same method and path replaces it.
    package mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: [:]][method] = handler
    }

    /// The response for one request: 404 for an unknown path, 405 for a known path with another method.
    package func respond(method: String, path: String, body: [UInt8]) -> Response {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard let methods = routes[bare] else { return .error(404, "no such resource: \(bare)") }
        guard let handler = methods[method] else {
            return .error(405, "\(method) is not allowed on \(bare); use \(methods.keys.sorted().joined(separator: " or "))")
        }
        return handler(body)
    }
}

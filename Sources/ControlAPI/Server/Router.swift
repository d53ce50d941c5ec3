/// The table of (method, path) → handler, apart from the socket plumbing so it is tested without one.
///
/// Adding a route is one `add` call; the handler gets the request body and returns a `Response` or
/// throws (`RequestError` chooses its status, `VMControlError` is 400/409/500, anything else 500).
/// Paths match exactly after the query string is cut off.
package struct Router: Sendable {
    /// What answers one route. It runs on the server's worker thread, never on an event loop, so it may block.
    package typealias Handler = @Sendable (RequestBody) throws -> Response

    private var handlers: [String: [String: Handler]] = [:]

    /// An empty table: every request gets a 404.
    package init() {}

    /// Adds `handler` for `method` (e.g. "GET") on `path` (e.g. "/vm"); it replaces an earlier one for the same pair.
    package mutating func add(_ method: String, _ path: String, _ handler: @escaping Handler) {
        handlers[path, default: [:]][method.uppercased()] = handler
    }

    /// Adds `handler` for `route`.
    package mutating func add(_ route: APIRoute, _ handler: @escaping Handler) { add(route.method.rawValue, route.path, handler) }

    /// Every (method, path) in the table, sorted by path then method.
    package var routes: [(method: String, path: String)] {
        handlers.keys.sorted().flatMap { path in handlers[path, default: [:]].keys.sorted().map { (method: $0, path: path) } }
    }

    /// The answer to one request: the handler's response, or a JSON error with the right status.
    package func respond(method: String, target: String, body: RequestBody) -> Response {
        let path = String(target.prefix { $0 != "?" && $0 != "#" })
        guard let methods = handlers[path] else { return Response(error: .notFound(path: path)) }
        guard let handler = methods[method.uppercased()] else {
            return Response(error: .methodNotAllowed(method: method, path: path, allowed: methods.keys.sorted()))
        }
        do {
            return try handler(body)
        } catch let error as RequestError {
            return Response(error: error)
        } catch let error as VMControlError {
            return Response(error: .vm(error))
        } catch {
            return Response(error: .internalFailure(reason: "\(error)"))
        }
    }
}

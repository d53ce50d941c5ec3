/// A route's answer: HTTP status, extra headers and a JSON body (empty for 204).
///
/// The server adds `Content-Type: application/json` (when there is a body and the route set no
/// other type), `Content-Length` and `Connection`.
package struct Response: Sendable, Equatable {
    package static func == (left: Response, right: Response) -> Bool {
        left.status == right.status && left.headers == right.headers && left.body == right.body
    }

    /// The HTTP status code.
    package var status: Int
    /// Headers besides the ones the server sets, e.g. `Allow` on a 405.
    package var headers: [String: String]
    /// The body: JSON text (or the text its Content-Type header names), or empty.
    package var body: [UInt8]
    /// Work that must wait until the client has this answer (a live update's exec): the server
    /// runs it on its worker thread once the answer is written. Not part of equality.
    package var afterSent: (@Sendable () -> Void)?

    /// A response with exactly these parts.
    package init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// An error answer `{"error": "<message>"}` with the error's status.
    package init(error: RequestError) {
        var headers: [String: String] = [:]
        if case .methodNotAllowed(_, _, let allowed) = error { headers["Allow"] = allowed.joined(separator: ", ") }
        let body = (try? JSONCoding.makeEncoder().encode(ErrorBody(error.description))).map(Array.init)
        self.init(status: error.status, headers: headers, body: body ?? Array(#"{"error":"internal error"}"#.utf8))
    }

    /// `value` as snake_case JSON; a value that cannot be encoded (a NaN, say) is a 500.
    package static func json(_ value: some Encodable, status: Int = 200) throws(RequestError) -> Response {
        do {
            return Response(status: status, body: Array(try JSONCoding.makeEncoder().encode(value)))
        } catch {
            throw .internalFailure(reason: "cannot encode the answer as JSON: \(error)")
        }
    }

    /// 204 No Content.
    package static let noContent = Response(status: 204)
}

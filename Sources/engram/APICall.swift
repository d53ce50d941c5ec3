import ControlAPI

/// One request to a VM's control socket for a CLI command: the answer's body, or a `CommandFailure`
/// carrying the API's own error message and status.
enum APICall {
    static func send(socket: String, route: APIRoute, body: [UInt8]? = nil) throws -> [UInt8] {
        try send(socket: socket, method: route.method.rawValue, path: route.path, body: body)
    }

    /// Sends `value` as the JSON body of `route`, in the API's snake_case.
    static func send<Body: Encodable>(socket: String, route: APIRoute, json value: Body) throws -> [UInt8] {
        try send(socket: socket, route: route, body: Array(try JSONCoding.makeEncoder().encode(value)))
    }

    static func send(socket: String, method: String, path: String, body: [UInt8]? = nil) throws -> [UInt8] {
        let reply: (status: Int, body: [UInt8])
        do {
            reply = try ControlClient(socketPath: socket).send(method: method, path: path, body: body)
        } catch {
            throw CommandFailure(error.description)
        }
        guard (200..<300).contains(reply.status) else {
            throw CommandFailure("\(errorMessage(in: reply.body)) (HTTP \(reply.status))")
        }
        return reply.body
    }

    /// Prints a JSON answer indented for people.
    static func printAnswer(_ body: [UInt8]) {
        guard !body.isEmpty else { return }
        print(JSONIndenter.indent(body) ?? String(decoding: body, as: UTF8.self))
    }

    /// The `error` of an error answer; the body itself (one line, shortened) if it is not one.
    static func errorMessage(in body: [UInt8]) -> String {
        if let message = ErrorBody.message(in: body) { return message }
        guard !body.isEmpty else { return "no error message" }
        return String(decoding: body.prefix(200), as: UTF8.self).split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

import FoundationEssentials

/// The body of one request, as a route handler sees it (at most `ControlServer.maximumBodyBytes`).
package struct RequestBody: Sendable, Equatable {
    /// The raw bytes; empty when the request had no body.
    package let bytes: [UInt8]

    /// A body of `bytes`.
    package init(_ bytes: [UInt8] = []) { self.bytes = bytes }

    /// True when the request carried no body.
    package var isEmpty: Bool { bytes.isEmpty }

    /// Decodes the body as snake_case JSON; a missing or invalid body is a 400 with a one-line reason.
    package func decode<Value: Decodable>(_ type: Value.Type) throws(RequestError) -> Value {
        guard !bytes.isEmpty else { throw .invalidBody(reason: "this request needs a JSON body") }
        do {
            return try JSONCoding.makeDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw .invalidBody(reason: Self.reason(error))
        } catch {
            throw .invalidBody(reason: "\(error)")
        }
    }

    /// The key as the client wrote it: the decoder reports `sizeInBytes` for `size_in_bytes`.
    private static func snakeCase(_ key: String) -> String {
        var result = ""
        for character in key {
            if character.isUppercase, !result.isEmpty { result.append("_") }
            result.append(contentsOf: character.lowercased())
        }
        return result
    }

    /// One line naming the field and what was wrong with it.
    private static func reason(_ error: DecodingError) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.isEmpty ? "the body" : path.map { $0.intValue.map { "[\($0)]" } ?? snakeCase($0.stringValue) }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing field \(field(context.codingPath + [key]))"
        case .typeMismatch(let type, let context): return "\(field(context.codingPath)) should be of type \(type)"
        case .valueNotFound(let type, let context): return "\(field(context.codingPath)) should be a \(type), not null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not valid JSON" : "\(field(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

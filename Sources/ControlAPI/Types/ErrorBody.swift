import FoundationEssentials

/// The body of every error answer: `{"error": "<one line>"}`.
package struct ErrorBody: Codable, Sendable, Equatable {
    /// What went wrong, on one line.
    package var error: String

    /// An error body; line breaks in `message` become spaces so the answer stays one line.
    package init(_ message: String) {
        error = message.split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    /// The message of an error answer's body, or nil when the body is not `{"error": "..."}`.
    package static func message(in body: [UInt8]) -> String? {
        (try? JSONCoding.makeDecoder().decode(ErrorBody.self, from: Data(body)))?.error
    }
}

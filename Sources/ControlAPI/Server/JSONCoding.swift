import FoundationEssentials

/// The API's JSON conventions in one place: snake_case keys (as Firecracker's API), sorted keys, unescaped slashes.
package enum JSONCoding {
    /// A new encoder with the API's settings (encoders are cheap; a fresh one avoids sharing a class across threads).
    package static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A new decoder with the API's settings.
    package static func makeDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return decoder
    }
}

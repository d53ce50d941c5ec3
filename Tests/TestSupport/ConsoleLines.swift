import Foundation

/// Finding lines in console output that may still be being written.
public enum ConsoleLines {
    /// The first line in `bytes` containing `needle`, counting only lines ended by a newline
    /// (the guest may be halfway through the last one) unless `includingUnterminated`.
    public static func first(containing needle: String, in bytes: [UInt8], includingUnterminated: Bool = false) -> String? {
        let end = includingUnterminated ? bytes.count : (bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0)
        return String(decoding: bytes[..<end], as: UTF8.self).split(whereSeparator: \.isNewline)
            .first { $0.contains(needle) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    }
}

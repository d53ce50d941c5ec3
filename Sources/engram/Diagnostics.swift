import SystemPackage

/// Engram's own messages go to standard error, prefixed, so standard output stays the guest's console.
enum Diagnostics {
    static func note(_ message: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array("engram: \(message)\n".utf8))
    }
}

/// A failure already explained to the user: print its one-line message and exit 1, no backtrace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// The version string the CLI and the API report.
enum EngramVersion {
    static let current = "0.1.0"
}

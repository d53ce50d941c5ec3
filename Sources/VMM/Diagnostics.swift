import SystemPackage

/// Engram's own messages go to standard error, prefixed, so standard output stays the guest's console.
package enum Diagnostics {
    package static func note(_ message: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array("engram: \(message)\n".utf8))
    }
}

/// The version string the CLI and the API report.
package enum EngramVersion {
    package static let current = "0.1.0"
}

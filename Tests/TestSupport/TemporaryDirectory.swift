import Foundation

/// A private directory for one test, removed when the value goes away, or at process exit for
/// one held in a `static let` (statics are never deinitialised, and a leaked directory of
/// snapshots fills the disk over many runs).
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL

    public init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("engram-test-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        ExitCleanup.register(url)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
        ExitCleanup.unregister(url)
    }

    /// A path inside the directory.
    public func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Removes `name` inside the directory (a large file a test is done with).
    public func remove(_ name: String) { try? FileManager.default.removeItem(atPath: path(name)) }
}

/// Directories still present when the test process exits.
private enum ExitCleanup {
    nonisolated(unsafe) static var pending: Set<URL> = []
    static let lock = NSLock()
    static let installed: Void = { atexit { ExitCleanup.removeAll() } }()

    static func register(_ url: URL) {
        lock.lock(); defer { lock.unlock() }
        _ = installed
        pending.insert(url)
    }

    static func unregister(_ url: URL) {
        lock.lock(); defer { lock.unlock() }
        pending.remove(url)
    }

    static func removeAll() {
        lock.lock(); defer { lock.unlock() }
        for url in pending { try? FileManager.default.removeItem(at: url) }
        pending.removeAll()
    }
}

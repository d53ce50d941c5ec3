import Foundation

/// A hugetlbfs mount made for one test, with `pages` 2 MiB pages added to the host's pool for
/// it; `remove` unmounts it and takes them out again. Root only. Suites run side by side, so the
/// pool grows and shrinks by each mount's own pages, one change at a time.
public final class HugePageMount: Sendable {
    public let path: String
    public let pages: Int
    private static let pool = NSLock()

    /// Whether this host lets root reserve huge pages and mount hugetlbfs (checked once, by doing it).
    public static let available: Bool = {
        guard getuid() == 0 else { return false }
        let directory = TemporaryDirectory()
        guard let probe = try? HugePageMount(in: directory, name: "probe", pages: 2) else { return false }
        probe.remove()
        return true
    }()

    public struct Refused: Error, CustomStringConvertible { public let description: String }

    /// Adds `pages` huge pages to the pool and mounts hugetlbfs at DIRECTORY/NAME.
    public init(in directory: TemporaryDirectory, name: String = "huge", pages: Int) throws {
        path = directory.path(name)
        self.pages = pages
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard Self.resizePool(by: pages) else {
            Self.resizePool(by: -pages)
            throw Refused(description: "the kernel reserved fewer than \(pages) more huge pages")
        }
        guard Self.shell("mount -t hugetlbfs none '\(path)'") == 0 else {
            Self.resizePool(by: -pages)
            throw Refused(description: "cannot mount hugetlbfs at \(path)")
        }
    }

    public func remove() {
        _ = Self.shell("umount '\(path)'")
        Self.resizePool(by: -pages)
    }

    /// Grows (or shrinks) the pool by `change` pages; false if the kernel did not make it that big.
    @discardableResult
    private static func resizePool(by change: Int) -> Bool {
        pool.lock()
        defer { pool.unlock() }
        let wanted = max(0, poolSize() + change)
        try? Data("\(wanted)\n".utf8).write(to: URL(fileURLWithPath: "/proc/sys/vm/nr_hugepages"))
        return poolSize() >= wanted
    }

    private static func poolSize() -> Int {
        Int(((try? String(contentsOfFile: "/proc/sys/vm/nr_hugepages", encoding: .utf8)) ?? "0")
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    private static func shell(_ command: String) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try? process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

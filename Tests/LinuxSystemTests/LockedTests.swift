import Foundation
@testable import LinuxSystem
import Testing
import TestSupport

@Suite struct LockedTests {
    /// Four threads add to one counter and one array under the lock; nothing is lost.
    @Test func threadsSeeEachOthersChanges() {
        let state = Shared<(count: Int, items: [Int])>((0, []))
        let group = DispatchGroup()
        for thread in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                for _ in 0..<10_000 { state.withLock { $0.count += 1 } }
                for item in 0..<10 { state.withLock { $0.items.append(thread * 10 + item) } }
                group.leave()
            }
        }
        group.wait()
        #expect(state.value.count == 40_000)
        #expect(state.value.items.sorted() == Array(0..<40))
    }

    /// The value a lock holds goes with the lock, whatever was put in it meanwhile.
    @Test func aLockFreesItsValue() {
        final class Tracked: Sendable {
            static let alive = Locked(0)
            init() { Self.alive.withLock { $0 += 1 } }
            deinit { Self.alive.withLock { $0 -= 1 } }
        }
        do {
            let locked = Locked([Tracked(), Tracked()])
            locked.withLock { $0.append(Tracked()) }
            #expect(Tracked.alive.withLock { $0 } == 3)
        }
        #expect(Tracked.alive.withLock { $0 } == 0)
    }

    /// A body that throws leaves the lock free and keeps the changes it made.
    @Test func aThrowingBodyReleasesTheLock() {
        struct Refusal: Error {}
        let locked = Locked([1])
        #expect(throws: Refusal.self) { try locked.withLock { (value) throws(Refusal) in value.append(2); throw Refusal() } }
        #expect(locked.withLock { $0 } == [1, 2])
    }

    /// Engram's sources use `Locked`, never the standard library's `Mutex`, whose futex lock
    /// ThreadSanitizer cannot see (docs/ARCHITECTURE.md, "One lock type").
    @Test func noSourceUsesTheStandardLibrarysMutex() throws {
        let sources = ProjectPaths.root.appendingPathComponent("Sources")
        let files = try #require(FileManager.default.enumerator(atPath: sources.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.count > 100)
        let mutex = #/(^|[^A-Za-z_])Mutex\s*[<(]/#
        var found: [String] = []
        for file in files {
            let text = try String(contentsOf: sources.appendingPathComponent(file), encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") && line.contains(mutex) {
                found.append("\(file):\(number + 1)")
            }
        }
        #expect(found.isEmpty, "use Locked instead of Mutex at \(found)")
    }
}

import Foundation
import GuestMemory
import LinuxSystem

/// Reads pages of a region on its own thread, as a vCPU (or KVM on its behalf) would touch
/// guest memory: each read of a missing page parks the thread until the pager serves it.
final class PageToucher: Sendable {
    private let result = Locked<[[UInt8]]?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ region: GuestRegion, pages: [UInt64], write: UInt8? = nil) {
        Thread.detachNewThread { [self] in
            var pagesRead: [[UInt8]] = []
            for page in pages {
                if let write { try? region.write([write], at: RegionOffset(page * 4096 + 100)) }
                pagesRead.append((try? region.read(count: 4096, at: RegionOffset(page * 4096))) ?? [])
            }
            result.withLock { $0 = pagesRead }
            done.signal()
        }
    }

    /// The pages read, in order; nil if they did not arrive within `seconds` (a hang fails instead of blocking the run).
    func pages(waitingAtMost seconds: Double = 60) -> [[UInt8]]? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        done.signal()
        return result.withLock { $0 }
    }

    /// True once the thread has read every page (without waiting).
    var finished: Bool { result.withLock { $0 != nil } }
}

/// Collects `onFailure` messages and lets a test wait for the first.
final class FailureRecorder: Sendable {
    private let messages = Locked<[String]>([])
    private let arrived = DispatchSemaphore(value: 0)

    var handler: @Sendable (String) -> Void {
        { [self] message in
            messages.withLock { $0.append(message) }
            arrived.signal()
        }
    }

    var all: [String] { messages.withLock { $0 } }

    /// Waits (at most `seconds`) for a failure; false if none came.
    func wait(atMost seconds: Double = 60) -> Bool {
        guard arrived.wait(timeout: .now() + seconds) == .success else { return false }
        arrived.signal()
        return true
    }
}

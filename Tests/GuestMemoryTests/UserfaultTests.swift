import Foundation
import Glibc
import GuestMemory
import Testing

/// The userfaultfd wrapper on real memfd regions: one thread touches, the test serves.
@Suite struct UserfaultTests {
    static let page = 4096

    /// A memfd region registered for MISSING faults with a fresh userfaultfd.
    private func registered(pages: Int = 8) throws -> (UserfaultDescriptor, GuestRegion) {
        let region = try GuestRegion(name: "ram", sizeInBytes: UInt64(pages * Self.page), backing: .memfd)
        let userfault = try UserfaultDescriptor(features: .missingShmem)
        let operations = try userfault.registerMissing(start: region.hostAddress(at: RegionOffset(0)), length: region.sizeInBytes)
        #expect(operations.isSuperset(of: [.copy, .zeroPage, .wake]))
        return (userfault, region)
    }

    /// Waits (bounded, so a bug fails instead of hanging) for a message and returns the batch.
    private func nextEvents(_ userfault: UserfaultDescriptor) throws -> [UserfaultEvent] {
        var entry = pollfd(fd: userfault.rawValue, events: Int16(POLLIN), revents: 0)
        try #require(poll(&entry, 1, 30_000) == 1, "no fault message arrived")
        let buffer = UserfaultEventBuffer(capacity: 8)
        let count = try userfault.readEvents(into: buffer)
        return (0..<count).map { buffer[$0] }
    }

    private func pattern(_ seed: UInt8, pages: Int = 1) -> [UInt8] {
        (0..<pages * Self.page).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) | 1 }
    }

    @Test func handshakeGrantsMissingShmem() throws {
        let userfault = try UserfaultDescriptor(features: .missingShmem)
        #expect(userfault.features.contains(.missingShmem))
        #expect(userfault.rawValue >= 0)
    }

    @Test func faultIsReportedAndServedByCopy() throws {
        let (userfault, region) = try registered()
        let base = region.hostAddress(at: RegionOffset(0))
        let toucher = Toucher { try? region.read(count: Self.page, at: RegionOffset(3 * UInt64(Self.page))) }
        let events = try nextEvents(userfault)
        #expect(events.first == .pageFault(address: base + 3 * UInt64(Self.page), write: false))

        let bytes = pattern(7)
        let installed = try bytes.withUnsafeBytes { try userfault.copy(to: base + 3 * UInt64(Self.page), from: $0) }
        #expect(installed == UInt64(Self.page))
        #expect(toucher.result() == bytes)
    }

    @Test func zeroPagesServeAWrite() throws {
        let (userfault, region) = try registered()
        let base = region.hostAddress(at: RegionOffset(0))
        let toucher = Toucher { () -> [UInt8]? in
            try? region.write([0xAB], at: RegionOffset(UInt64(Self.page) + 10))
            return try? region.read(count: Self.page, at: RegionOffset(UInt64(Self.page)))
        }
        let events = try nextEvents(userfault)
        #expect(events.first == .pageFault(address: base + UInt64(Self.page), write: true))
        #expect(try userfault.zeroPages(start: base + UInt64(Self.page), length: UInt64(Self.page)) == UInt64(Self.page))
        var expected = [UInt8](repeating: 0, count: Self.page)
        expected[10] = 0xAB
        #expect(toucher.result() == expected)
    }

    @Test func copyStopsAtAPresentPageAndReportsThePrefix() throws {
        let (userfault, region) = try registered()
        let base = region.hostAddress(at: RegionOffset(0))
        // Page 2 goes in first; a copy of pages 0..<4 then installs 0 and 1 and stops there.
        let single = pattern(1)
        #expect(try single.withUnsafeBytes { try userfault.copy(to: base + 2 * UInt64(Self.page), from: $0) } == UInt64(Self.page))
        let four = pattern(2, pages: 4)
        #expect(try four.withUnsafeBytes { try userfault.copy(to: base, from: $0) } == 2 * UInt64(Self.page))
        // The same page again: nothing installed, no error (EEXIST).
        #expect(try single.withUnsafeBytes { try userfault.copy(to: base + 2 * UInt64(Self.page), from: $0) } == 0)
        #expect(try userfault.zeroPages(start: base, length: UInt64(Self.page)) == 0)
        // A present page was never overwritten; waking a range nobody waits on is harmless.
        try userfault.wake(start: base, length: 4 * UInt64(Self.page))
        #expect(try region.read(count: Self.page, at: RegionOffset(2 * UInt64(Self.page))) == single)
        #expect(try region.read(count: 2 * Self.page, at: RegionOffset(0)) == Array(four[0..<2 * Self.page]))
    }

    @Test func wakeResumesAThreadWhosePageArrivedWithoutWaking() throws {
        let (userfault, region) = try registered()
        let base = region.hostAddress(at: RegionOffset(0))
        let toucher = Toucher { try? region.read(count: Self.page, at: RegionOffset(5 * UInt64(Self.page))) }
        _ = try nextEvents(userfault)
        let bytes = pattern(5)
        let installed = try bytes.withUnsafeBytes { try userfault.copy(to: base + 5 * UInt64(Self.page), from: $0, wake: false) }
        #expect(installed == UInt64(Self.page))
        try userfault.wake(start: base + 5 * UInt64(Self.page), length: UInt64(Self.page))
        #expect(toucher.result() == bytes)
    }

    @Test func unregisteredRangeFaultsNormally() throws {
        let (userfault, region) = try registered()
        try userfault.unregister(start: region.hostAddress(at: RegionOffset(0)), length: region.sizeInBytes)
        #expect(try region.read(count: 16, at: RegionOffset(0)) == [UInt8](repeating: 0, count: 16))
    }

    @Test func copyOutsideARegisteredRangeNamesTheCallAndRange() throws {
        let (userfault, region) = try registered()
        try userfault.unregister(start: region.hostAddress(at: RegionOffset(0)), length: region.sizeInBytes)
        let bytes = pattern(3)
        let start = region.hostAddress(at: RegionOffset(0))
        do {
            _ = try bytes.withUnsafeBytes { try userfault.copy(to: start, from: $0) }
            Issue.record("a copy into an unregistered range succeeded")
        } catch let error as UserfaultError {
            guard case .ioctl(let name, let failedStart, let length, _) = error else { Issue.record("unexpected \(error)"); return }
            #expect(name == "UFFDIO_COPY" && failedStart == start && length == UInt64(Self.page))
            #expect(error.description.contains("UFFDIO_COPY") && error.description.contains(String(start, radix: 16)))
        }
    }

    @Test func closedDescriptorRefusesCallsAndKeptOpenOneStaysOpen() throws {
        let (userfault, region) = try registered()
        userfault.close()
        #expect(userfault.rawValue == -1)
        #expect(throws: UserfaultError.closed(name: "UFFDIO_WAKE")) {
            try userfault.wake(start: region.hostAddress(at: RegionOffset(0)), length: 4096)
        }
        let (kept, _) = try registered()
        kept.keepOpenUntilExit()
        kept.close()
        #expect(kept.rawValue >= 0)
    }

    @Test func messagesSayWhatIsMissing() {
        let unavailable = UserfaultError.unavailable(.notPermitted, device: .noSuchFileOrDirectory).description
        #expect(unavailable.contains("userfaultfd is not available") && unavailable.contains("vm.unprivileged_userfaultfd=1"))
        let missing = UserfaultError.missingFeatures(requested: .missingShmem, granted: []).description
        #expect(missing.contains("MISSING_SHMEM"))
    }
}

/// Runs `body` on its own thread (it blocks in a fault until the test serves the page).
private final class Toucher<T: Sendable>: @unchecked Sendable {
    private var value: T?
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> T) {
        Thread.detachNewThread { [self] in
            value = body()
            done.signal()
        }
    }

    /// The body's result; waits at most 30 s so a bug fails the test instead of hanging it.
    func result() -> T? {
        guard done.wait(timeout: .now() + 30) == .success else { return nil }
        return value
    }
}

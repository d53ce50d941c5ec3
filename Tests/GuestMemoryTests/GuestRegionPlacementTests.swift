import Foundation
import GuestMemory
import Testing
import TestSupport

/// Regions mapped over a placeholder (a standby VMM's RAM, whose addresses KVM already has):
/// they take its addresses, one at a time, and give them back, empty, when they go.
@Suite struct GuestRegionPlacementTests {
    let directory = TemporaryDirectory()

    @Test func aRegionOverAPlaceholderTakesItsAddressesAndGivesThemBackEmpty() throws {
        let placeholder = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .anonymous)
        let address = placeholder.hostAddress(at: RegionOffset(0))
        do {
            let region = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd, over: placeholder)
            #expect(region.hostAddress(at: RegionOffset(0)) == address)
            try region.write(Array("guest secret".utf8), at: RegionOffset(0x2000))
            // The placeholder's view is the region's pages now: the very same addresses.
            #expect(try placeholder.read(count: 12, at: RegionOffset(0x2000)) == Array("guest secret".utf8))
            let fd = try #require(region.fileDescriptor)
            let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/fd/\(fd)"))
            try file.seek(toOffset: 0x2000)
            #expect(try file.read(upToCount: 12) == Data("guest secret".utf8))
        }
        // Gone: the addresses hold fresh zero pages again, and the next region may take them.
        #expect(try placeholder.read(count: 12, at: RegionOffset(0x2000)) == [UInt8](repeating: 0, count: 12))
        let next = try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd, over: placeholder)
        #expect(next.hostAddress(at: RegionOffset(0)) == address)
    }

    @Test func aSnapshotFileMappedCopyOnWriteOverAPlaceholderReadsTheFile() throws {
        let path = directory.path("pages")
        var bytes = [UInt8](repeating: 0, count: 2 << 20)
        bytes[(1 << 20) + 0x1000..<(1 << 20) + 0x1004] = [1, 2, 3, 4]
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let file = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        let placeholder = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .anonymous)
        let region = try GuestRegion(
            name: "ram", sizeInBytes: 1 << 20, copyOnWriteOf: file.fileDescriptor, at: 1 << 20, path: path, over: placeholder)
        #expect(region.hostAddress(at: RegionOffset(0)) == placeholder.hostAddress(at: RegionOffset(0)))
        #expect(try region.read(count: 4, at: RegionOffset(0x1000)) == [1, 2, 3, 4])
        #expect(try placeholder.read(count: 4, at: RegionOffset(0x1000)) == [1, 2, 3, 4])
    }

    @Test func aPlaceholderOfAnotherSizeOrInUseIsRefused() throws {
        let placeholder = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .anonymous)
        #expect(throws: GuestMemoryError.self) { try GuestRegion(name: "ram", sizeInBytes: 4 << 20, backing: .memfd, over: placeholder) }
        let held = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd, over: placeholder)
        do {
            _ = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd, over: placeholder)
            Issue.record("a second region took a placeholder in use")
        } catch {
            #expect("\(error)".contains("in use"), "\(error)")
        }
        // A region over a region that is itself placed is refused too (one level only).
        #expect(throws: GuestMemoryError.self) { try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd, over: held) }
        _ = held
    }

    /// A memfd placeholder is itself the memory a lazy or copy restore fills: claimed once, and a
    /// failed restore's pages discarded so the next one starts from zeros.
    @Test func aMemfdPlaceholderIsClaimedInPlaceAndDiscardedAfterAFailure() throws {
        let placeholder = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd)
        #expect(placeholder.claim())
        #expect(!placeholder.claim(), "claimed twice")
        try placeholder.write(Array("partial copy".utf8), at: RegionOffset(0x3000))
        placeholder.discardClaim()
        #expect(try placeholder.read(count: 12, at: RegionOffset(0x3000)) == [UInt8](repeating: 0, count: 12))
        #expect(placeholder.claim())
        #expect(!(try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .anonymous)).claim(), "anonymous memory has no memfd to keep")
    }

    /// A region mapped over a memfd placeholder gives the addresses back to the placeholder's own
    /// file, whose pages it never touched.
    @Test func aRegionOverAMemfdPlaceholderGivesBackItsFile() throws {
        let placeholder = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd)
        try placeholder.write([7], at: RegionOffset(0x5000))
        do {
            let over = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd, over: placeholder)
            #expect(try over.read(count: 1, at: RegionOffset(0x5000)) == [0])
            try over.write([9], at: RegionOffset(0x5000))
        }
        #expect(try placeholder.read(count: 1, at: RegionOffset(0x5000)) == [7])
    }
}

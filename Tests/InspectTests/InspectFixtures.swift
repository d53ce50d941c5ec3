import Foundation
import GuestMemory
import Inspect
import SnapshotFormat
import TestSupport

/// Images with known contents for Inspect's tests: raw files written byte for byte, and Engram
/// snapshots (full and diff) of memfd regions.
enum InspectFixtures {
    static let pageSize = 4096

    /// A page of non-zero bytes, different for every (page, salt): both are spelled out at its start.
    static func pageBytes(_ page: Int, salt: Int = 0) -> [UInt8] {
        var bytes = (0..<pageSize).map { UInt8(truncatingIfNeeded: (page &* 131 &+ salt &* 7 &+ $0 &* 31) % 251) | 1 }
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: page >> (8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: salt >> (8 * index))
        }
        return bytes
    }

    /// Writes `pages` pages to `path`: each page's bytes come from `content` (nil: leave a hole).
    static func writeRaw(_ path: String, pages: Int, content: (Int) -> [UInt8]?) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(pages * pageSize))
        for page in 0..<pages {
            guard let bytes = content(page) else { continue }
            try handle.seek(toOffset: UInt64(page * pageSize))
            handle.write(Data(bytes))
        }
    }

    /// Places `bytes` at `offset` of an existing file.
    static func patch(_ path: String, at offset: Int, _ bytes: [UInt8]) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        handle.write(Data(bytes))
    }

    /// Guest memory with "ram" (256 pages at GPA 0) and "high" (64 pages at 4 GiB).
    static func memory(fill: (String, Int) -> [UInt8]?) throws -> GuestMemoryMap {
        let ram = try GuestRegion(name: "ram", sizeInBytes: 256 * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: 64 * 4096, backing: .memfd)
        for region in [ram, high] {
            for page in 0..<Int(region.sizeInBytes) / pageSize {
                if let bytes = fill(region.name, page) { try region.write(bytes, at: RegionOffset(UInt64(page * pageSize))) }
            }
        }
        return GuestMemoryMap(regions: [ram, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
    }
}

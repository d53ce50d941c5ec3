import Glibc
import GuestMemory
import SnapshotFormat

/// A seeded generator so failures can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum SnapshotFixtures {
    /// Bytes of a non-zero test page, different for every (region, page).
    static func pageBytes(region: String, page: UInt64) -> [UInt8] {
        var generator = SplitMix64(seed: page &* 1_000_003 &+ UInt64(region.utf8.count) &* 7 &+ UInt64(region.utf8.first ?? 0))
        return (0..<4096).map { _ in UInt8.random(in: 1...255, using: &generator) }
    }

    /// Non-zero pages of the two-region fixture: a mix of runs, singles and gaps.
    static func isFilled(region: String, page: UInt64) -> Bool {
        region == "ram" ? (page % 3 == 0 || (100..<400).contains(page)) : (page % 7 == 2)
    }

    /// Two memfd regions: "ram" (`ramPages` pages at guest 0) and "high" (`highPages` pages at 4 GiB).
    static func memory(ramPages: UInt64 = 1024, highPages: UInt64 = 256) throws -> GuestMemoryMap {
        let ram = try GuestRegion(name: "ram", sizeInBytes: ramPages * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: highPages * 4096, backing: .memfd)
        for region in [ram, high] {
            for page in 0..<region.sizeInBytes / 4096 where isFilled(region: region.name, page: page) {
                try region.write(pageBytes(region: region.name, page: page), at: RegionOffset(page * 4096))
            }
        }
        // A page with a single non-zero byte at its very end must not count as zero.
        try ram.write([0x01], at: RegionOffset(2 * 4096 + 4095))
        return GuestMemoryMap(regions: [ram, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
    }

    static let state: [UInt8] = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 13) }

    /// pwrite of `bytes` at `offset` into `path`.
    static func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY)
        precondition(fd >= 0, "open \(path)")
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, off_t(offset)) }
        precondition(written == bytes.count, "pwrite \(path)")
    }

    /// pread of `count` bytes at `offset` from `path`.
    static func bytes(_ path: String, at offset: UInt64, count: Int) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        precondition(fd >= 0, "open \(path)")
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, off_t(offset)) }
        precondition(read == count, "pread \(path)")
        return bytes
    }

    /// Rewrites the header CRC of `path` after a deliberate edit, so deeper checks are reached.
    static func resealHeader(_ path: String, headerSize: Int) {
        let header = bytes(path, at: 0, count: headerSize - 4)
        let crc = CRC32C.checksum(header)
        patch(path, at: UInt64(headerSize - 4), (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * UInt32($0))) })
    }

    static func fileSize(_ path: String) -> UInt64 {
        var info = stat()
        precondition(stat(path, &info) == 0, "stat \(path)")
        return UInt64(info.st_size)
    }

    static func allocatedBytes(_ path: String) -> UInt64 {
        var info = stat()
        precondition(stat(path, &info) == 0, "stat \(path)")
        return UInt64(info.st_blocks) * 512
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

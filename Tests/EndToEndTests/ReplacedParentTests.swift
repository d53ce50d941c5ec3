import Foundation
import GuestMemory
import SnapshotFormat
import SnapshotTestSupport
import Testing
import TestSupport

/// The snapshot-format issue's reproduction, through every command that reads a chain: a full
/// snapshot a.snap, a diff b.snap on it, then a new full snapshot forced over a.snap. Every
/// reader refuses b.snap in one line naming both files, before reading memory or the network.
@Suite struct ReplacedParentTests {
    let directory = TemporaryDirectory()

    private func memory(seed: UInt8) throws -> GuestMemoryMap {
        let ram = try GuestRegion(name: "ram", sizeInBytes: 64 * 4096, backing: .memfd)
        try ram.write([UInt8](repeating: seed, count: 4096), at: RegionOffset(3 * 4096))
        return GuestMemoryMap(regions: [ram], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
        ])
    }

    @Test func everyReaderRefusesADiffWhoseParentWasReplaced() throws {
        let base = directory.path("a.snap")
        let diff = directory.path("b.snap")
        try SnapshotWriter.writeFull(memory: memory(seed: 1), state: [1], to: base)
        try SnapshotWriter.writeDiff(memory: memory(seed: 2), dirtyPages: [:], parentFileName: "a.snap", state: [2], to: diff)
        try SnapshotWriter.writeFull(memory: memory(seed: 3), state: [3], to: base, options: WriteOptions(force: true))
        let secret = directory.path("secret")
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let commands: [[String]] = [
            ["restore", diff, "--memory", "copy"],
            ["restore", diff, "--memory", "map"],
            ["restore", diff, "--memory", "lazy"],
            ["serve", diff, "--listen", "127.0.0.1:0", "--secret-file", secret],
            ["push", diff, "s3://bucket/name", "--s3-endpoint", "http://127.0.0.1:9"],
            ["mem", "regions", diff],
            ["mem", "read", diff, "0x3000", "--length", "16"],
            ["snapshot-merge", diff, directory.path("merged.snap")],
            ["snapshot", "verify", diff],
        ]
        for command in commands {
            let result = try runEngram(command)
            #expect(result.status != 0, "\(command) succeeded")
            let lines = result.errors.split(separator: "\n")
            #expect(lines.count == 1, "\(command): \(result.errors)")
            #expect(result.errors.contains("b.snap") && result.errors.contains("a.snap") && result.errors.contains("replaced"),
                    "\(command): \(result.errors)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path("merged.snap")))
    }

    /// A flipped bitmap bit (which pages the file stores) is refused by every command that reads
    /// the file, in one line naming the bitmap; `snapshot verify` says DAMAGED.
    @Test func everyReaderRefusesAFlippedBitmapBit() throws {
        let path = directory.path("bits.snap")
        try SnapshotWriter.writeFull(memory: memory(seed: 4), state: [4], to: path)
        #expect(try runEngram(["mem", "stats", path]).status == 0, "the file reads before the flip")
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: ram.bitmapOffset)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: ram.bitmapOffset)
        try handle.write(contentsOf: [byte ^ 0x01])
        try handle.close()
        let secret = directory.path("secret-bits")
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: secret))
        chmod(secret, 0o600)
        let commands: [[String]] = [
            ["restore", path, "--memory", "copy"],
            ["restore", path, "--memory", "map"],
            ["restore", path, "--memory", "lazy"],
            ["serve", path, "--listen", "127.0.0.1:0", "--secret-file", secret],
            ["push", path, "s3://bucket/name", "--s3-endpoint", "http://127.0.0.1:9"],
            ["mem", "stats", path],
            ["mem", "read", path, "0x3000", "--length", "16"],
            ["snapshot", "verify", path],
        ]
        for command in commands {
            let result = try runEngram(command)
            #expect(result.status != 0, "\(command) succeeded")
            #expect(result.errors.split(separator: "\n").count == 1, "\(command): \(result.errors)")
            #expect(result.errors.contains("bitmap"), "\(command): \(result.errors)")
        }
        #expect(try runEngram(["snapshot", "verify", path]).errors.contains("DAMAGED"))
    }
}

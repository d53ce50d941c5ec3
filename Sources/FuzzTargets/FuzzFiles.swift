import FoundationEssentials
import SnapshotFormat

/// Reading and writing corpus files, for the replay and seed commands and the regression test.
package enum FuzzFiles {
    package static func read(_ path: String) -> [UInt8]? { (try? Data(contentsOf: URL(fileURLWithPath: path))).map { Array($0) } }

    package static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    /// The machine state of the snapshot at `path`, as a restore reads it.
    package static func snapshotState(_ path: String) throws -> [UInt8] { try SnapshotReader(path: path).state }

    /// Every file under `directory`, sorted; empty if it does not exist.
    package static func files(under directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.sorted().map { "\(directory)/\($0)" }
    }
}

import ArgumentParser
import FoundationEssentials
import SnapshotFormat

/// `engram snapshot-merge TOP OUTPUT`: writes a diff chain as one full snapshot (no VM needed).
struct SnapshotMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot-merge",
        abstract: "Merge a diff snapshot and the parents it names into one full snapshot at OUTPUT.",
        discussion: """
            Each page comes from the newest file of the chain that stores it; the state is TOP's. \
            Every page is checked against its CRC. OUTPUT is written like any snapshot: mode 0600, \
            complete or absent. Afterwards OUTPUT alone restores the VM as TOP's chain does.
            """
    )

    @Argument(help: "The newest snapshot of the chain (a diff, or a full snapshot).") var top: String
    @Argument(help: "The full snapshot to write.") var output: String
    @Flag(help: "Replace OUTPUT if it exists.") var force = false

    func run() throws {
        if !force, FileManager.default.fileExists(atPath: output) {
            throw CommandFailure("\(output) exists; pass --force to replace it")
        }
        let summary: SnapshotMergeSummary
        do {
            summary = try SnapshotMerger.merge(top: top, into: output, replacingExisting: force)
        } catch {
            throw CommandFailure(error.description)
        }
        let files = summary.filesMerged == 1 ? "1 file" : "\(summary.filesMerged) files"
        print("merged \(files) into \(output): \(summary.write.pagesWritten) pages written, \(summary.write.pagesZero) zero pages left as holes")
    }
}

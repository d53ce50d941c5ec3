import Machine
import SnapshotFormat

/// `engram snapshot verify`: checks everything the format defines in a snapshot and the chain
/// of parents it names: each file's header, region table, bitmaps, CRC tables, configuration
/// and state sections (structure and CRCs, then that the machine state decodes), the chain's
/// identities, and every stored page against its CRC. Stops at the first problem.
package enum SnapshotVerifier {
    /// What a clean file held.
    package struct Verdict: Sendable, Equatable {
        package let path: String
        package let files: Int
        package let pagesChecked: UInt64
        package let sections: Int

        /// One line for the user.
        package var line: String {
            "snapshot \(path): OK: \(files) file\(files == 1 ? "" : "s"), \(pagesChecked) stored pages checked, \(sections) sections"
        }
    }

    /// Verifies `path` and its chain; the error is the first problem found, in one line.
    package static func verify(_ path: String) throws(VMMError) -> Verdict {
        let chain: SnapshotChain
        do { chain = try SnapshotChain(path: path) } catch { throw .failed("\(error)") }
        var sections = 0
        for file in chain.files {
            do { _ = try MachineStateRecord.decode(file.state, snapshotPath: file.path) } catch { throw .failed("\(error)") }
            sections += file.configuration.sections.count + file.stateSections.sections.count
        }
        do { try chain.verifyAllPages() } catch { throw .failed("\(error)") }
        let pages = chain.files.reduce(UInt64(0)) { total, file in total + file.regions.reduce(0) { $0 + $1.bitmap.setCount } }
        return Verdict(path: path, files: chain.files.count, pagesChecked: pages, sections: sections)
    }
}

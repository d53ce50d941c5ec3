import GuestMemory
import LinuxSystem
import SnapshotFormat

/// Tests of the file format write opaque state bytes as one section, and diffs naming a parent
/// by file name alone (its identity read from the directory, or none if it is not there).
extension SnapshotWriter {
    /// The section the bytes go in.
    package static let testSectionName = "test-state"

    @discardableResult
    package static func writeFull(
        memory: GuestMemoryMap, state: [UInt8], to path: String, options: WriteOptions = WriteOptions()
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        try writeFull(memory: memory, contents: testContents(state), to: path, options: options)
    }

    @discardableResult
    package static func writeDiff(
        memory: GuestMemoryMap, dirtyPages: [String: PageBitmap], parentFileName: String, state: [UInt8], to path: String
    ) throws(SnapshotFormatError) -> SnapshotWriteSummary {
        let parentPath = FileSystem.directory(of: path) + "/" + parentFileName
        let identity = (try? SnapshotDirectory.header(of: parentPath).identity) ?? SnapshotIdentity(id: .none, headerCRC: 0)
        return try writeDiff(
            memory: memory, dirtyPages: dirtyPages, parent: ParentSnapshot(fileName: parentFileName, identity: identity),
            contents: testContents(state), to: path)
    }

    package static func testContents(_ state: [UInt8]) -> SnapshotContents {
        SnapshotContents(configuration: StateSections(), state: StateSections([StateSection(name: testSectionName, version: 1, payload: state)]))
    }
}

extension SnapshotReader {
    /// The bytes a test wrote as its state.
    package var testState: [UInt8]? { stateSections[SnapshotWriter.testSectionName]?.payload }
}

extension SnapshotChain {
    /// The bytes a test wrote as the top file's state.
    package var testState: [UInt8]? { files[0].testState }
}

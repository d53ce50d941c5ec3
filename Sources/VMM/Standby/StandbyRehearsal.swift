import Glibc
import GuestMemory
import LinuxSystem
import Machine
import Paging
import SnapshotFormat

/// A standby VMM's rehearsal of a restore's reading half, on a snapshot of its own: the first pass
/// through the snapshot reader, the restore source and the state decoder in a process pays for
/// the Swift runtime's type and conformance lookups (about 1 ms here), which a standby VMM pays
/// at start rather than while a client waits. The snapshot is one small RAM region and a sample
/// state, written beside the control socket and removed at once; a rehearsal that fails costs
/// only its time.
enum StandbyRehearsal {
    static let regionBytes: UInt64 = 2 << 20

    static func run(sample: MachineStateRecord, beside apiSocket: String) {
        let path = FileSystem.directory(of: apiSocket) + "/.engram-standby-rehearsal-\(getpid()).snap"
        defer { FileSystem.remove(path) }
        do {
            let ram = try GuestRegion(name: "ram", sizeInBytes: regionBytes, backing: .memfd)
            // One stored page, so a page is read and checked like a real one.
            try ram.write([UInt8](repeating: 0xE6, count: PageSize.bytes), at: RegionOffset(0))
            try SnapshotWriter.writeFull(memory: try Machine.restoredMemory([ram]), contents: try sample.sections(), to: path)
            var request = RestoreRequest(snapshot: path)
            request.memory = .lazy
            let source = try VMRestore.openSource(request)
            _ = try MachineStateRecord.decode(source.state, snapshotPath: path)
            guard let chain = source.chain else { return }
            try chain.checkCRCTables(includingBase: true)
            try chain.base.verifyClearPagesAreZero()
            _ = try source.pages.loadWorkingSet()
            let pages = source.pages
            try PageBuffer(pageCount: 1).withMutablePages(1) { (span: inout MutableRawSpan) throws(PageSourceError) in
                try pages.readPages(region: 0, firstPage: PageIndex(0), into: &span)
            }
        } catch {}
    }
}

import Foundation
import GuestMemory
import LinuxSystem
import Machine
import Paging
import SnapshotFormat
import SnapshotTestSupport
import Testing
import TestSupport
@testable import VMM

/// Snapshot format version 2 seen from a real VM: every restore mode refuses what the format
/// refuses, `snapshot verify` finds damage anywhere, a chain cannot outgrow what readers accept,
/// a replaced parent is caught, and a version 1 file still restores.
@Suite(.serialized, .enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct SnapshotIntegrityTests {
    let directory = TemporaryDirectory()
    static let modes: [RestoreMode] = [.copy, .map, .lazy]

    private func restoreError(_ path: String, _ mode: RestoreMode, verify: Bool = false) -> VMMError? {
        var request = RestoreRequest(snapshot: path)
        request.memory = mode
        request.verify = verify
        request.consoleLog = directory.path("restored.log")
        do throws(VMMError) {
            let vm = try VMRestore.build(request)
            vm.machine.finish(.shutdownRequested)
            return nil
        } catch {
            return error
        }
    }

    private func flip(_ path: String, at offset: UInt64, mask: UInt8 = 0x01) throws {
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        var byte: UInt8 = 0
        #expect(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= mask
        #expect(pwrite(fd, &byte, 1, off_t(offset)) == 1)
    }

    @Test func aClearedOrSetBitmapBitIsRefusedInEveryMode() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory)
        defer { source.finish(.shutdownRequested) }
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let stored = try #require((0..<ram.pageCount).first { ram.isPresent(PageIndex($0)) })
        let zero = try #require((0..<ram.pageCount).first { !ram.isPresent(PageIndex($0)) })
        for page in [stored, zero] {
            try flip(path, at: ram.bitmapOffset + page / 8, mask: UInt8(1 << (page % 8)))
            for mode in Self.modes {
                for verify in [false, true] {
                    let error = restoreError(path, mode, verify: verify)
                    #expect(error?.description.contains("bitmap is corrupt") == true, "page \(page) \(mode) verify \(verify): \(String(describing: error))")
                }
            }
            try flip(path, at: ram.bitmapOffset + page / 8, mask: UInt8(1 << (page % 8)))
        }
        #expect(restoreError(path, .copy) == nil)
    }

    /// A damaged CRC table is refused by every mode, a mapped restore too although it reads none
    /// of the base's page CRCs: a file is refused in every mode or in none. An entry in a group
    /// of 64 pages the file does not store is read by no mode, so only `--verify` (which checks
    /// the table's bytes as stored) refuses a file where that one changed.
    @Test func aDamagedCRCTableIsRefusedInEveryMode() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory)
        defer { source.finish(.shutdownRequested) }
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let stored = try #require((0..<ram.pageCount).first { ram.isPresent(PageIndex($0)) })
        let absent = UInt64(try #require(ram.bitmap.words.firstIndex(of: 0))) * 64
        try flip(path, at: ram.crcTableOffset + 4 * stored)
        for mode in Self.modes {
            for verify in [false, true] {
                let error = restoreError(path, mode, verify: verify)
                #expect(error?.description.contains("CRC table is corrupt") == true, "\(mode) verify \(verify): \(String(describing: error))")
            }
        }
        try flip(path, at: ram.crcTableOffset + 4 * stored)
        try flip(path, at: ram.crcTableOffset + 4 * absent)
        for mode in Self.modes {
            #expect(restoreError(path, mode) == nil, "\(mode)")
            let error = restoreError(path, mode, verify: true)
            #expect(error?.description.contains("CRC table is corrupt") == true, "\(mode) verify: \(String(describing: error))")
        }
        try flip(path, at: ram.crcTableOffset + 4 * absent)
        #expect(restoreError(path, .map) == nil)
    }

    /// Bytes under a clear bit of a full snapshot (a zero page) would show in a mapped restore:
    /// every mode refuses the file, not only the one that would show them.
    @Test func bytesUnderAClearBitAreRefusedInEveryMode() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory)
        defer { source.finish(.shutdownRequested) }
        let ram = try #require(try SnapshotReader(path: path).region(named: "ram"))
        let zero = try #require((0..<ram.pageCount).first { !ram.isPresent(PageIndex($0)) })
        try flip(path, at: ram.pagesOffset + zero * 4096 + 64, mask: 0x5A)
        for mode in Self.modes {
            let error = restoreError(path, mode)
            #expect(error?.description.contains("page \(zero)") == true && error?.description.contains("clear bit") == true,
                    "\(mode): \(String(describing: error))")
        }
        try flip(path, at: ram.pagesOffset + zero * 4096 + 64, mask: 0x5A)
        #expect(restoreError(path, .map) == nil, "zeros written back in the hole's place are fine")
    }

    @Test func verifyFindsAFlippedByteInAPageABitmapTheStateAndTheHeader() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory)
        defer { source.finish(.shutdownRequested) }
        let verdict = try SnapshotVerifier.verify(path)
        #expect(verdict.files == 1 && verdict.pagesChecked > 0 && verdict.sections == 9)  // machine, vcpu.0, six devices and vmgenid
        #expect(verdict.line.contains("OK"))
        let reader = try SnapshotReader(path: path)
        let ram = try #require(reader.region(named: "ram"))
        let page = try #require((0..<ram.pageCount).first { ram.isPresent(PageIndex($0)) })
        let places: [(String, UInt64, String)] = [
            ("page", ram.pagesOffset + page * 4096 + 17, "page \(page)"),
            ("bitmap", ram.bitmapOffset, "bitmap"),
            ("state", reader.header.stateOffset + reader.header.stateLength / 2, "state"),
            ("configuration", reader.header.configurationOffset + 20, "configuration"),
            ("header", 300, "header"),
        ]
        for (what, offset, expected) in places {
            try flip(path, at: offset)
            let error = #expect(throws: VMMError.self, "\(what)") { try SnapshotVerifier.verify(path) }
            #expect(error?.description.contains(expected) == true, "\(what): \(String(describing: error))")
            #expect(error?.description.contains("\n") == false)
            try flip(path, at: offset)
        }
        #expect(try SnapshotVerifier.verify(path) == verdict)
    }

    @Test func aChainStopsAtWhatReadersAcceptAndMergingItWorks() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory, name: "0.snap")
        defer { source.finish(.shutdownRequested) }
        for n in 1..<SnapshotLayout.maximumChainFiles {
            _ = try source.writeSnapshot(to: directory.path("\(n).snap"), kind: .diff, resume: false)
        }
        let top = directory.path("\(SnapshotLayout.maximumChainFiles - 1).snap")
        #expect(try SnapshotChain(path: top).files.count == SnapshotLayout.maximumChainFiles)
        let error = #expect(throws: MachineSnapshotError.self) {
            try source.writeSnapshot(to: directory.path("too-long.snap"), kind: .diff, resume: false)
        }
        #expect(error?.description.contains("merge") == true && error?.description.contains("full snapshot") == true)
        #expect(FileStatus(path: directory.path("too-long.snap")) == nil)
        // The longest chain the VMM writes merges, and verifies.
        let merged = directory.path("merged.snap")
        try SnapshotMerger.merge(top: top, into: merged)
        #expect(try SnapshotVerifier.verify(merged).files == 1)
        #expect(restoreError(merged, .map) == nil && restoreError(path, .map) == nil)
    }

    /// The reproduction: a.snap, a diff b.snap, then a new full snapshot over a.snap.
    @Test func aReplacedParentIsRefusedAndReplacingItNeedsForce() throws {
        let (source, base) = try GuestFixture.snapshotOfAGuest(in: directory, name: "a.snap")
        defer { source.finish(.shutdownRequested) }
        let diff = directory.path("b.snap")
        _ = try source.writeSnapshot(to: diff, kind: .diff, resume: false)
        let refused = #expect(throws: MachineSnapshotError.self) { try source.writeSnapshot(to: base, resume: false) }
        #expect(refused?.description.contains("b.snap") == true && refused?.description.contains("--force") == true)
        #expect(restoreError(diff, .copy) == nil)

        _ = try source.writeSnapshot(to: base, resume: false, force: true)
        for mode in Self.modes {
            let error = restoreError(diff, mode)
            #expect(error?.description.contains("b.snap") == true && error?.description.contains("a.snap") == true, "\(mode): \(String(describing: error))")
        }
        #expect(throws: VMMError.self) { try SnapshotVerifier.verify(diff) }
        #expect(throws: SnapshotFormatError.self) { try SnapshotMerger.merge(top: diff, into: directory.path("m.snap")) }
    }

    @Test func theVMsOwnRAMFileIsNeverASnapshotTarget() throws {
        var boot = BootRequest(kernel: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20)
        let ramFile = directory.path("guest.ram")
        boot.ramFile = ramFile
        #expect(FileManager.default.createFile(atPath: ramFile, contents: nil) && truncate(ramFile, 64 << 20) == 0)
        let machine = try Machine(configuration: try boot.machineConfiguration(), consoleLogPath: directory.path("ram.log"))
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        _ = try GuestFixture.waitForLog(directory.path("ram.log"), containing: "READY")
        let size = FileStatus(path: ramFile)?.sizeInBytes
        let error = #expect(throws: MachineSnapshotError.self) { try machine.writeSnapshot(to: ramFile, resume: true, force: true) }
        #expect(error?.description.contains("own file") == true)
        #expect(FileStatus(path: ramFile)?.sizeInBytes == size)
        #expect(machine.runState == .running)
    }

    /// A version 1 file (this snapshot rewritten as version 1 wrote it, JSON state and all)
    /// restores in every mode with the same memory, and the guest runs on.
    @Test func aVersion1SnapshotStillRestoresInEveryMode() throws {
        let (source, path) = try GuestFixture.snapshotOfAGuest(in: directory)
        defer { source.finish(.shutdownRequested) }
        let record = try MachineStateRecord.decode(try SnapshotReader(path: path).state, snapshotPath: path)
        try SnapshotDowngrade.toVersion1(path, state: Array(try JSONEncoder().encode(record)))
        #expect(try SnapshotReader(path: path).header.version == 1)
        for mode in Self.modes {
            let vm = try GuestFixture.restoreAndRun(path, mode: mode, like: source, log: directory.path("v1-\(mode.rawValue).log"))
            vm.machine.finish(.shutdownRequested)
        }
        #expect(try SnapshotVerifier.verify(path).files == 1)
    }
}

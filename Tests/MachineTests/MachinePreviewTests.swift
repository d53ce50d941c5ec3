import Devices
import Foundation
import Machine
import SnapshotFormat
import Testing
import TestSupport

/// A migration's destination checks the source's preview of the machine before any page
/// arrives: a disk of another size is refused in one line, whatever number the peer sent.
@Suite(.enabled(if: TestEnvironment.hasKVM, "needs /dev/kvm (the host's CPUID)"))
struct MachinePreviewTests {
    let directory = TemporaryDirectory()

    /// The preview as a source sends it (JSON), with one disk of `diskSectors` sectors.
    private func preview(diskSectors: UInt64, path: String) throws -> MachinePreview {
        let json = """
            {"configuration": {"cpuCount": 0, "memorySizeInBytes": \(64 << 20), "regionNames": ["ram"], "kernelPath": "k"},
             "cpuid": [], "disks": [{"configuration": {"path": "\(path)", "readOnly": true}, "capacitySectors": \(diskSectors)}]}
            """
        return try MachinePreview.decode(Array(json.utf8), from: "the test")
    }

    @Test func aDiskOfAnotherSizeIsRefusedWhateverSizeThePeerClaims() throws {
        let path = directory.path("disk.img")
        FileManager.default.createFile(atPath: path, contents: Data(count: 8 * 512))
        let shapes = [SnapshotRegionShape(name: "ram", sizeInBytes: 64 << 20, placements: RAMLayout.placements(forSize: 64 << 20))]
        #expect(throws: Never.self) { try (try preview(diskSectors: 8, path: path)).check(shapes: shapes, overrides: DeviceOverrides()) }
        // 2^55 sectors are 2^64 bytes: the message must not multiply them (that trapped and ended the VMM).
        for sectors: UInt64 in [9, 1 << 55, .max] {
            do {
                try (try preview(diskSectors: sectors, path: path)).check(shapes: shapes, overrides: DeviceOverrides())
                Issue.record("a disk of \(sectors) sectors was accepted")
            } catch {
                let expected = sectors == 9 ? "4608 bytes" : "\(sectors) sectors"
                #expect("\(error)" == "disk \(path): holds 4096 bytes; the migrating guest's disk blk0 has \(expected)")
            }
        }
    }
}

import SnapshotTestSupport
import Glibc
import GuestMemory
import SnapshotFormat
import Testing
import TestSupport

@Suite struct SnapshotFuzzTests {
    let directory = TemporaryDirectory()

    /// Flips random bytes in the header, region table, bitmaps, CRC tables, configuration and state
    /// sections; half the
    /// time the header CRC is recomputed so the deeper checks run. The reader must either throw
    /// a SnapshotFormatError or hand out a snapshot whose every area lies inside the file.
    @Test func randomCorruptionNeverCrashesAndNeverEscapesTheFile() throws {
        let path = directory.path("fuzz.snap")
        try SnapshotWriter.writeFull(memory: SnapshotFixtures.memory(ramPages: 16, highPages: 8), state: Array(SnapshotFixtures.state.prefix(300)), to: path)
        let template = try SnapshotReader(path: path)
        let headerSize = SnapshotLayout.headerSize(regionCount: 2)
        let metadataEnd = max(template.regions.map { $0.crcTableOffset + UInt64($0.pageCRCs.count * 4) }.max() ?? 0,
                              template.header.configurationOffset + template.header.configurationLength)
        let stateRange = template.header.stateOffset..<(template.header.stateOffset + template.header.stateLength)
        let fileSize = template.fileSizeInBytes
        let table = UInt64(SnapshotLayout.fixedHeaderLength(version: SnapshotLayout.formatVersion))
        let targets: [Range<UInt64>] = [0..<table, table..<table + 2 * 224, UInt64(headerSize)..<metadataEnd, stateRange]
        let original = SnapshotFixtures.bytes(path, at: 0, count: Int(metadataEnd))
        let originalState = SnapshotFixtures.bytes(path, at: stateRange.lowerBound, count: Int(stateRange.count))

        var generator = SplitMix64(seed: 0xE4_6A_A5)
        var opened = 0
        var errorKinds: [String: Int] = [:]
        for iteration in 0..<500 {
            let flips = Int.random(in: 1...6, using: &generator)
            for _ in 0..<flips {
                let target = targets[Int.random(in: 0..<targets.count, using: &generator)]
                let offset = UInt64.random(in: target, using: &generator)
                let byte = SnapshotFixtures.bytes(path, at: offset, count: 1)[0]
                // Sometimes a big value (top byte of a field), sometimes a small flip.
                let value = Bool.random(using: &generator) ? byte ^ UInt8.random(in: 1...255, using: &generator) : 0xFF
                SnapshotFixtures.patch(path, at: offset, [value == byte ? byte ^ 1 : value])
            }
            if iteration % 2 == 0 { SnapshotFixtures.resealHeader(path, headerSize: headerSize) }

            let outcome = Self.openAndTouchEverything(path, fileSize: fileSize)
            switch outcome {
            case .success: opened += 1
            case .failure(let error):
                let kind = Mirror(reflecting: error).children.first?.label ?? "\(error)"
                errorKinds[kind, default: 0] += 1
                #expect(!error.description.isEmpty && !error.description.contains("\n"))
            }

            SnapshotFixtures.patch(path, at: 0, original)
            SnapshotFixtures.patch(path, at: stateRange.lowerBound, originalState)
        }
        print("fuzz: \(opened) of 500 corrupted files opened; errors: \(errorKinds.sorted { $0.key < $1.key })")
        // The restored file must read cleanly again, or the restore above is broken.
        try SnapshotReader(path: path).verifyAllPages()
        // Resealed headers must have reached checks past the header CRC.
        #expect(errorKinds.keys.filter { $0 != "headerChecksum" }.count >= 4, "\(errorKinds)")
        #expect(errorKinds["headerChecksum", default: 0] > 100)
    }

    /// Opens `path`; if that succeeds, checks every area lies inside the file and reads pages.
    static func openAndTouchEverything(_ path: String, fileSize: UInt64) -> Result<Void, SnapshotFormatError> {
        let reader: SnapshotReader
        do throws(SnapshotFormatError) {
            reader = try SnapshotReader(path: path)
        } catch {
            return .failure(error)
        }
        #expect(reader.fileSizeInBytes == fileSize)
        #expect(reader.header.stateOffset + reader.header.stateLength <= fileSize)
        #expect(reader.header.stateLength <= 16 << 20)
        for region in reader.regions {
            #expect(region.pagesOffset + region.sizeInBytes <= fileSize)
            #expect(region.bitmapOffset + PageBitmap.byteCount(pageCount: region.pageCount) <= fileSize)
            #expect(region.crcTableOffset + region.pageCount * 4 <= fileSize)
            #expect(region.pageCRCs.count == Int(region.pageCount))
            for page in [0, region.pageCount - 1] {
                _ = try? reader.readPage(region, page: PageIndex(page))
            }
        }
        _ = try? reader.verifyAllPages()
        return .success(())
    }
}

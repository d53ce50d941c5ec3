import GuestMemory
import Paging
import SnapshotFormat
import Testing
import TestSupport
@testable import Transport

/// The manifest is the first thing a client trusts from the network: every count and size is
/// checked before it is used.
@Suite struct ManifestTests {
    let directory = TemporaryDirectory()

    /// A manifest's fields, to be encoded as given (however wrong).
    struct Fields {
        struct Region {
            var name = Array("ram".utf8)
            var size: UInt64 = 10 * 4096
            var placements: [(guest: UInt64, length: UInt64, offset: UInt64)] = [(0, 10 * 4096, 0)]
            var bitmap: [UInt8] = [0b101, 0, 0, 0, 0, 0, 0, 0]
        }

        var regions = [Region()]
        var regionCount: UInt32?
        var state: [UInt8] = [1, 2, 3]
        var stateLength: UInt32?
        var trailing: [UInt8] = []

        func encoded() -> [UInt8] {
            var writer = ByteWriter()
            writer.u64(0xF00D)
            writer.u32(regionCount ?? UInt32(regions.count))
            for region in regions {
                writer.u16(UInt16(region.name.count))
                writer.append(region.name)
                writer.u64(region.size)
                writer.u32(UInt32(region.placements.count))
                for placement in region.placements {
                    writer.u64(placement.guest)
                    writer.u64(placement.length)
                    writer.u64(placement.offset)
                }
                writer.append(region.bitmap)
            }
            writer.u32(stateLength ?? UInt32(state.count))
            writer.append(state)
            writer.u32(7)
            writer.append(trailing)
            return writer.bytes
        }
    }

    static func refusal(_ fields: Fields) -> String? { refusal(fields.encoded()) }

    static func refusal(_ bytes: [UInt8]) -> String? {
        do {
            _ = try SnapshotManifest(decoding: bytes, peer: "server")
            return nil
        } catch {
            guard case .malformed(let peer, let reason) = error, peer == "server" else { return "wrong error: \(error)" }
            return reason
        }
    }

    @Test func chainManifestRoundTrips() throws {
        let chain = try TransportFixture.snapshot(in: directory)
        let manifest = SnapshotManifest(chain: chain, workingSetPages: 12)
        let decoded = try SnapshotManifest(decoding: manifest.encoded(), peer: "server")
        #expect(decoded.fingerprint == chain.fingerprint)
        #expect(decoded.regions == chain.regions.map(\.shape))
        #expect(decoded.dataPages == manifest.dataPages)
        #expect(decoded.dataPages[0].setCount == UInt64((0..<2048).filter { TransportFixture.isFilled(region: 0, page: UInt64($0)) }.count))
        #expect(decoded.state == chain.state && decoded.workingSetPages == 12)
    }

    @Test func handMadeManifestDecodes() throws {
        let manifest = try SnapshotManifest(decoding: Fields().encoded(), peer: "server")
        #expect(manifest.fingerprint == 0xF00D && manifest.regions.map(\.name) == ["ram"] && manifest.workingSetPages == 7)
        #expect(manifest.dataPages[0].contains(PageIndex(0)) && !manifest.dataPages[0].contains(PageIndex(1)) && manifest.dataPages[0].contains(PageIndex(2)))
    }

    @Test func everyTruncationIsRefused() {
        let bytes = Fields().encoded()
        let accepted = (0..<bytes.count).filter { Self.refusal(Array(bytes.prefix($0))) == nil }
        #expect(accepted.isEmpty)
        #expect(Self.refusal(Fields(trailing: [0]))?.contains("1 bytes too many") == true)
    }

    @Test func countsAndSizesOutOfBoundsAreRefused() {
        var fields = Fields()
        fields.regionCount = 0
        #expect(Self.refusal(fields)?.contains("0 regions") == true)
        fields.regionCount = 65
        #expect(Self.refusal(fields)?.contains("65 regions") == true)

        func region(_ change: (inout Fields.Region) -> Void) -> String? {
            var fields = Fields()
            change(&fields.regions[0])
            return Self.refusal(fields)
        }
        #expect(region { $0.name = [] }?.contains("0 bytes") == true)
        #expect(region { $0.name = [UInt8](repeating: 65, count: 65) }?.contains("65 bytes") == true)
        #expect(region { $0.size = 0 }?.contains("multiple of 4096") == true)
        #expect(region { $0.size = 10 * 4096 + 1 }?.contains("multiple of 4096") == true)
        #expect(region { $0.size = (1 << 40) + 4096 }?.contains("up to 1 TiB") == true)
        #expect(region { $0.placements = Array(repeating: (0, 4096, 0), count: 5) }?.contains("5 placements") == true)
        #expect(region { $0.placements = [(0, 4096, 10 * 4096)] }?.contains("outside itself") == true)
        #expect(region { $0.placements = [(0, 0, 0)] }?.contains("outside itself") == true)
        #expect(region { $0.placements = [(0, 11 * 4096, 0)] }?.contains("outside itself") == true)
        #expect(region { $0.placements = [(.max - 4095, 8192, 0)] }?.contains("outside itself") == true)
        // Page 10 of a 10-page region.
        #expect(region { $0.bitmap = [0, 0b100, 0, 0, 0, 0, 0, 0] }?.contains("bits past the end") == true)

        var state = Fields()
        state.stateLength = (17 << 20) + 1
        #expect(Self.refusal(state)?.contains("at most \(17 << 20)") == true)
        state.stateLength = 4
        #expect(Self.refusal(state) != nil)
    }
}

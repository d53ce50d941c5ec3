import GuestMemory
import SnapshotFormat
import Testing
import TestSupport
@testable import FuzzTargets

/// The seeds get past the first checks, so libFuzzer starts deep: the chain seed resolves to a
/// diff over a full snapshot, the migration seed's pages land, each device seed is a request its
/// device answers, and the viewer's session gets framebuffer updates.
extension FuzzTargetRuns {
@Suite(.serialized) struct SeedCorpusTests {
    @Test func theChainSeedResolvesToTwoFiles() throws {
        let seed = try #require(try SeedCorpus.seeds(state: nil)[.chain]?.first)
        ChainInput.run(seed.bytes)
        let chain = try SnapshotChain(path: ChainInput.directory + "/top.snap")
        #expect(chain.files.count == 2 && chain.files[1].kind == .full)
        // A parent that is not the one the diff names is refused, not followed.
        var files = ChainInput.files(seed.bytes)
        files[1][0].bytes[40] ^= 0xff
        ChainInput.run(ChainInput.input(files))
        #expect(throws: SnapshotFormatError.self) { try SnapshotChain(path: ChainInput.directory + "/top.snap") }
    }

    @Test func eachDeviceSeedIsARequestItsDeviceAnswers() throws {
        let seeds = try #require(try SeedCorpus.seeds(state: nil)[.device])
        #expect(seeds.count == 9)
        // Without a tap (not root, no tun driver) the target has no network device.
        #expect(DeviceRequestInput.network != nil || !TapWire.available, "the fuzz target could not make its tap")
        for seed in seeds where DeviceRequestInput.network != nil || !seed.name.hasPrefix("net-") {
            try DeviceRequestInput.memory.0.write([UInt8](repeating: 0, count: 8), at: RegionOffset(0x6000))
            DeviceRequestInput.run(seed.bytes)
            let used = try DeviceRequestInput.memory.0.read(count: 4, at: RegionOffset(0x6000))
            #expect(UInt16(used[2]) | UInt16(used[3]) << 8 == 1, "\(seed.name): the device put one chain in the used ring")
        }
    }

    /// The migration seed's pages pass their CRC checks and land (the fuzz target's regions are
    /// the ones read here): region 1's page 7 holds its bytes, region 0's page 3 was named zero again.
    @Test func theMigrationSeedLandsItsPages() throws {
        let seeds = try #require(try SeedCorpus.seeds(state: nil)[.frames])
        let seed = try #require(seeds.first { $0.name == "migration-pass" })
        let regions = FrameInput.regions
        try #require(regions.count == 2)
        try regions[1].write([UInt8](repeating: 0, count: 4096), at: RegionOffset(7 * 4096))
        FrameInput.run(seed.bytes)
        #expect(try regions[1].read(count: 4096, at: RegionOffset(7 * 4096)) == (0..<4096).map { UInt8(truncatingIfNeeded: $0) })
        #expect(try regions[0].read(count: 4096, at: RegionOffset(3 * 4096)) == [UInt8](repeating: 0, count: 4096))
    }

    @Test func theViewerSeedGetsPastTheHandshakeToUpdates() throws {
        let seed = try #require(try SeedCorpus.seeds(state: nil)[.rfb]?.first)
        // Version (12), security types (2), result (4), ServerInit (24 + name): then updates.
        let handshakeOnly = RFBInput.exchange(Array(seed.bytes.prefix(15)))
        let session = RFBInput.exchange(seed.bytes)
        #expect(handshakeOnly > 40 && handshakeOnly < 100, "\(handshakeOnly)")
        // A FramebufferUpdate (4 bytes), its rectangle (12) and the ZRLE data (a length and zlib bytes).
        #expect(session > handshakeOnly + 4 + 12 + 4 + 16, "\(session) bytes after \(handshakeOnly): the full update came")
    }
}
}

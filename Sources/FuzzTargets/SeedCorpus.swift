import FoundationEssentials
import GuestMemory
import Paging
import SnapshotFormat
import Transport

/// Valid inputs for each target, made with Engram's own writers: libFuzzer starts from them,
/// so it spends its time past the magic numbers and length checks. `state` is a real VM's
/// machine state (from a snapshot of the test kernel), or empty sections without one.
package enum SeedCorpus {
    /// The largest input scripts/fuzz.sh lets libFuzzer make (-max_len).
    package static let inputLimit = 64 << 10

    package static func seeds(state: [UInt8]?) throws -> [FuzzTarget: [(name: String, bytes: [UInt8])]] {
        let snapshot = try tinySnapshot(state: state)
        var seeds: [FuzzTarget: [(name: String, bytes: [UInt8])]] = [:]
        // The page areas start 2 MiB in (SnapshotLayout.pagesAlignment); the fuzzer mutates what
        // comes before them (header, region tables, bitmaps, CRC tables, state) within scripts/fuzz.sh's
        // input limit, so the seed is that part. The regression test replays the whole file too.
        let head = Array(snapshot.prefix(Self.inputLimit))
        seeds[.image] = [("snapshot-head", head)]
        seeds[.snapshot] = [("snapshot-head", head)]
        seeds[.chain] = [("diff-and-full", try tinyChain(state: state))]
        seeds[.state] = state.map { [("machine-state", $0)] } ?? [("empty-sections", StateSections().encoded())]
        let pages = (0..<6).map { PageReference(region: $0 % 2, page: PageIndex(UInt64($0 * 3))) }
        seeds[.workingSet] = [("working-set", WorkingSet(fingerprint: 0x1234, pages: pages, recordedMilliseconds: 40).encoded())]
        seeds[.frames] = [("manifest-and-pages", frames(snapshot: snapshot)), ("migration-pass", migrationPass())]
        seeds[.objectStore] = [
            ("error", [0] + Array("<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone &amp; away</Message></Error>".utf8)),
            ("list", [1] + Array(("<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>t&lt;1</NextContinuationToken>"
                + "<Contents><Key>a/b</Key><Size>12</Size></Contents><Contents><Key>c</Key><Size>0</Size></Contents></ListBucketResult>").utf8)),
            ("upload", [2] + Array("<InitiateMultipartUploadResult><UploadId>abc</UploadId></InitiateMultipartUploadResult>".utf8)),
            ("manifest", [3] + Array("{\"version\":1,\"regions\":[]}".utf8)),
            ("pack-index", [4] + Array("{\"chunks\":{}}".utf8)),
        ]
        seeds[.control] = [
            ("get-vm", Array("GET /vm\n".utf8)),
            ("migrate", Array("PUT /vm/migrate\n{\"to\":\"tcp://10.0.0.2:7000\",\"mode\":\"precopy\",\"max_downtime_ms\":300,\"secret_file\":\"/s\"}".utf8)),
            ("snapshot", Array("PUT /vm/snapshot\n{\"path\":\"/tmp/x.snap\",\"diff\":true}".utf8)),
            ("keyboard", Array("PUT /vm/keyboard\n{\"events\":[{\"keysym\":65,\"down\":true}]}".utf8)),
            ("balloon", Array("PATCH /vm/balloon\n{\"target_bytes\":1048576}".utf8)),
            ("update", Array("PUT /vm/update\n{\"binary\":\"/usr/bin/engram\",\"mode\":\"transfer\"}".utf8)),
            ("fork", Array("PUT /vm/fork\n{\"count\":2}".utf8)),
        ]
        seeds[.framebuffer] = [("geometry", Array("1024x768x32".utf8))]
        seeds[.rfb] = [("viewer-session", viewerSession())]
        seeds[.virtqueue] = [("two-chains", virtqueue())]
        seeds[.device] = deviceRequests()
        return seeds
    }

    /// A snapshot of two small regions (some pages of data, the rest holes) with `state`.
    static func tinySnapshot(state: [UInt8]?) throws -> [UInt8] {
        let low = try GuestRegion(name: "ram", sizeInBytes: 16 * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: 4 * 4096, backing: .memfd)
        for page in [0, 3, 4, 9] { try low.write([UInt8](repeating: UInt8(page + 1), count: 4096), at: RegionOffset(UInt64(page) * 4096)) }
        try high.write(Array("engram".utf8), at: RegionOffset(4096 + 17))
        let memory = GuestMemoryMap(regions: [low, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: low.sizeInBytes, region: low, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
        let sections = try state.map { try StateSections(decoding: $0, what: "the seed's state") } ?? StateSections()
        let path = "/dev/shm/engram-fuzz-seed-\(UInt64.random(in: 0 ... .max)).snap"
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try SnapshotWriter.writeFull(memory: memory, contents: SnapshotContents(configuration: sections, state: StateSections()), to: path)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// A diff (top.snap) over a full snapshot (base.snap), as ChainInput reads them. Their pages are
    /// zero, so neither stores a page area and both fit the input limit: what is fuzzed is the
    /// resolution (names, identities, regions, bitmaps), and the pages read are the padding's.
    static func tinyChain(state: [UInt8]?) throws -> [UInt8] {
        let ram = try GuestRegion(name: "ram", sizeInBytes: 16 * 4096, backing: .memfd)
        let memory = GuestMemoryMap(regions: [ram], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
        ])
        let sections = try state.map { try StateSections(decoding: $0, what: "the seed's state") } ?? StateSections()
        let directory = "/dev/shm/engram-fuzz-seed-chain-\(UInt64.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try SnapshotWriter.writeFull(memory: memory, contents: SnapshotContents(configuration: sections, state: StateSections()), to: directory + "/base.snap")
        var dirty = PageBitmap(pageCount: 16)
        dirty.insert(PageIndex(2))
        let identity = try SnapshotDirectory.header(of: directory + "/base.snap").identity
        try SnapshotWriter.writeDiff(
            memory: memory, dirtyPages: ["ram": dirty], parent: ParentSnapshot(fileName: "base.snap", identity: identity),
            contents: SnapshotContents(configuration: sections, state: StateSections()), to: directory + "/top.snap")
        // Each file's non-zero 4 KiB blocks, as extents (a block of tables, the state behind the pages).
        func extents(_ name: String) throws -> ChainInput.File {
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            return stride(from: 0, to: bytes.count, by: 4096).compactMap { offset in
                let block = Array(bytes[offset..<min(offset + 4096, bytes.count)])
                return block.contains { $0 != 0 } ? (offset, block) : nil
            }
        }
        return ChainInput.input([try extents("top.snap"), try extents("base.snap")])
    }

    /// A MANIFEST frame for the snapshot, then a PAGES frame of two pages, as a server sends them.
    static func frames(snapshot: [UInt8]) -> [UInt8] {
        func frame(_ type: FrameType, _ payload: [UInt8]) -> [UInt8] { le(UInt32(payload.count + 1)) + [type.rawValue] + payload }
        var pages = le(UInt32(2))
        // Records name page 3 and 4 of region 0 (CRCs left 0: the reader checks frames, not pages).
        for page in [UInt64(3), 4] { pages += le(page) + le(UInt32(0)) }
        pages += [UInt8](repeating: 4, count: 4096) + [UInt8](repeating: 5, count: 4096)
        return frame(.manifest, Array(snapshot.prefix(512))) + frame(.pages, pages) + frame(.error, Array("done".utf8))
    }

    /// A pre-copy pass as a destination receives it: two pages with their CRCs (region 0 page 3,
    /// region 1 page 7), one of them named zero again, the pass's end and a state.
    static func migrationPass() -> [UInt8] {
        func frame(_ type: FrameType, _ payload: [UInt8]) -> [UInt8] { le(UInt32(payload.count + 1)) + [type.rawValue] + payload }
        let data = [[UInt8](repeating: 3, count: 4096), (0..<4096).map { UInt8(truncatingIfNeeded: $0) }]
        let references = [PageReference(region: 0, page: PageIndex(3)).packed, PageReference(region: 1, page: PageIndex(7)).packed]
        var pages = le(UInt32(2))
        for (reference, bytes) in zip(references, data) { pages += le(reference) + le(CRC32C.checksum(bytes)) }
        pages += data[0] + data[1]
        return frame(.pages, pages) + frame(.zeroPages, le(UInt32(1)) + le(references[0])) + frame(.passEnd, le(UInt32(1)) + le(UInt64(2)))
            + frame(.machineState, Array("state".utf8))
    }

    /// A queue of 8 with two chains: a readable 16-byte header then a writable 512-byte buffer,
    /// and an indirect table of two descriptors (features byte 3: indirect and EVENT_IDX).
    static func virtqueue() -> [UInt8] {
        var memory = [UInt8](repeating: 0, count: 0x6000 + 4 + 8 * 8 + 2)
        func put(_ bytes: [UInt8], at offset: Int) { memory.replaceSubrange(offset..<offset + bytes.count, with: bytes) }
        func descriptor(_ index: Int, address: UInt64, length: UInt32, flags: UInt16, next: UInt16, table: Int = 0) {
            put(le(address) + le(length) + le(flags) + le(next), at: table + index * 16)
        }
        descriptor(0, address: 0x1000, length: 16, flags: 1, next: 1)  // NEXT
        descriptor(1, address: 0x1100, length: 512, flags: 2, next: 0)  // WRITE
        descriptor(2, address: 0x2000, length: 32, flags: 4, next: 0)  // INDIRECT: a table of two
        descriptor(0, address: 0x1400, length: 8, flags: 1, next: 1, table: 0x2000)
        descriptor(1, address: 0x1500, length: 64, flags: 2, next: 0, table: 0x2000)
        put(le(UInt16(0)) + le(UInt16(2)) + le(UInt16(0)) + le(UInt16(2)), at: 0x4000)  // flags, idx 2, ring [0, 2]
        return [3, 3] + memory
    }

    /// One request per device in DeviceRequestInput's layout: a block write of one sector, an
    /// entropy buffer, a vsock connection request to host port 1234, two pages given to the
    /// balloon and taken back, a free-page report of 32 KiB, a 60-byte frame sent, the control
    /// queue's announce acknowledgement, and a receive buffer. The first byte is the device's
    /// place in `DeviceRequestInput.devices`; the network seeds (`net-`) need its tap.
    static func deviceRequests() -> [(name: String, bytes: [UInt8])] {
        func queue(_ chain: [(address: UInt64, length: UInt32, writable: Bool)], data: [(Int, [UInt8])]) -> [UInt8] {
            var memory = [UInt8](repeating: 0, count: 0xa000 + 16)
            func put(_ bytes: [UInt8], at offset: Int) { memory.replaceSubrange(offset..<offset + bytes.count, with: bytes) }
            for (index, link) in chain.enumerated() {
                let flags: UInt16 = (index + 1 < chain.count ? 1 : 0) | (link.writable ? 2 : 0)
                put(le(link.address) + le(link.length) + le(flags) + le(UInt16(index + 1)), at: index * 16)
            }
            put(le(UInt16(0)) + le(UInt16(1)) + le(UInt16(0)), at: 0x4000)  // flags, idx 1, ring [0]
            for (offset, bytes) in data { put(bytes, at: offset) }
            return memory
        }
        let blockHeader = le(UInt32(1)) + le(UInt32(0)) + le(UInt64(2))  // VIRTIO_BLK_T_OUT, sector 2
        // Broadcast, from 02:00:00:00:00:01, ethertype 0x88b5 (local experimental), padded to 60 bytes.
        let ethernet = [UInt8](repeating: 0xff, count: 6) + [2, 0, 0, 0, 0, 1, 0x88, 0xb5] + [UInt8](repeating: 0x5a, count: 46)
        let vsockHeader = le(UInt64(3)) + le(UInt64(2)) + le(UInt32(1000)) + le(UInt32(1234)) + le(UInt32(0))
            + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(0)) + le(UInt32(65536)) + le(UInt32(0))  // STREAM, REQUEST
        return [
            ("block-write", [0, 0, 3] + queue([(0x8000, 16, false), (0x9000, 512, false), (0xa000, 1, true)],
                                                data: [(0x8000, blockHeader), (0x9000, [UInt8](repeating: 0x5a, count: 512))])),
            ("entropy", [1, 0, 3] + queue([(0x9000, 64, true)], data: [])),
            ("vsock-request", [2, 0, 3] + queue([(0x8000, 44, false)], data: [(0x8000, vsockHeader)])),
            ("balloon-inflate", [3, 0, 3] + queue([(0x8000, 8, false)], data: [(0x8000, le(UInt32(40)) + le(UInt32(41)))])),
            ("balloon-deflate", [4, 0, 3] + queue([(0x8000, 8, false)], data: [(0x8000, le(UInt32(40)) + le(UInt32(41)))])),
            ("balloon-report", [6, 0, 3] + queue([(0x20000, 0x8000, true)], data: [])),
            ("net-transmit", [7, 0, 3] + queue([(0x8000, 72, false)], data: [(0x8000, [UInt8](repeating: 0, count: 12) + ethernet)])),
            ("net-control", [8, 0, 3] + queue([(0x8000, 2, false), (0x9000, 1, true)], data: [(0x8000, [3, 0])])),
            ("net-receive", [9, 0, 3] + queue([(0x8000, 2048, true)], data: [])),
        ]
    }

    /// A viewer's whole session: version, no authentication, shared ClientInit, then a 16-bit
    /// pixel format, ZRLE and raw offered, a full and an incremental update request, a key
    /// press and release, a pointer event and clipboard text.
    static func viewerSession() -> [UInt8] {
        func be<T: FixedWidthInteger>(_ value: T) -> [UInt8] { le(value.byteSwapped) }
        var bytes = Array("RFB 003.008\n".utf8) + [1, 1]
        bytes += [0, 0, 0, 0] + [16, 16, 0, 1] + be(UInt16(31)) + be(UInt16(63)) + be(UInt16(31)) + [11, 5, 0] + [0, 0, 0]  // SetPixelFormat
        bytes += [2, 0] + be(UInt16(2)) + be(UInt32(16)) + be(UInt32(0))  // SetEncodings: ZRLE, raw
        bytes += [3, 0] + be(UInt16(0)) + be(UInt16(0)) + be(UInt16(64)) + be(UInt16(64))  // full update
        bytes += [3, 1] + be(UInt16(8)) + be(UInt16(8)) + be(UInt16(16)) + be(UInt16(16))  // incremental
        bytes += [4, 1, 0, 0] + be(UInt32(0x61)) + [4, 0, 0, 0] + be(UInt32(0x61))  // key 'a' down, up
        bytes += [5, 0] + be(UInt16(10)) + be(UInt16(10))  // pointer
        bytes += [6, 0, 0, 0] + be(UInt32(5)) + Array("hello".utf8)  // ClientCutText
        return bytes
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
}


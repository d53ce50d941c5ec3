import GuestMemory
import Testing

@Suite struct CRC32CTests {
    @Test func checkValueOfTheStandardString() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func thirtyTwoZeroBytes() {
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func updateInPiecesEqualsOneChecksumAtEveryAlignment() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 3, 7, 8, 9, 63, 500, 999, 1000] {
            let crc = CRC32C.update(CRC32C.checksum(Array(bytes[..<split])), bytes: Array(bytes[split...]))
            #expect(crc == whole, "split at \(split)")
        }
        // Unaligned starts go through the 8-byte path too.
        for start in 1..<9 {
            let direct = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<start + 100])) }
            #expect(direct == CRC32C.checksum(Array(bytes[start..<start + 100])))
        }
    }

    /// Stepping over zeros without reading them gives what reading them gives, from any CRC, for
    /// lengths around every power of two the step combines (and the 8 MiB of an 8 GiB CRC table).
    @Test func appendingZerosEqualsReadingThem() {
        var generator = SystemRandomNumberGenerator()
        let zeros = [UInt8](repeating: 0, count: 1 << 23)
        for count in [0, 1, 2, 3, 4, 7, 8, 255, 256, 257, 4095, 4096, 65_536, 100_003, 1 << 20, (1 << 23) - 1, 1 << 23] {
            let seed = UInt32.random(in: 0...UInt32.max, using: &generator)
            let read = zeros.withUnsafeBytes { CRC32C.update(seed, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            #expect(CRC32C.appendingZeros(seed, count: UInt64(count)) == read, "\(count) zeros after \(seed)")
        }
        // Steps add up: 2^40 zeros as two halves, and zeros after data as one pass over both.
        #expect(CRC32C.appendingZeros(CRC32C.appendingZeros(5, count: 1 << 39), count: 1 << 39) == CRC32C.appendingZeros(5, count: 1 << 40))
        let data: [UInt8] = Array("engram".utf8)
        #expect(CRC32C.appendingZeros(CRC32C.checksum(data), count: 300) == CRC32C.checksum(data + [UInt8](repeating: 0, count: 300)))
    }

    @Test func hardwareAndTablePathsAgree() {
        var generator = SystemRandomNumberGenerator()
        // Around the three-stream blocks of the hardware path (3 x 256 and 3 x 4096 bytes) too.
        for length in [0, 1, 7, 8, 9, 100, 767, 768, 769, 775, 1536, 4096, 4099, 12_287, 12_288, 12_289, 24_576 + 800, 100_003] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let seed = UInt32.random(in: 0...UInt32.max, using: &generator)
            bytes.withUnsafeBytes { buffer in
                #expect(CRC32C.update(seed, bytes: buffer) == CRC32C.tableUpdate(seed, bytes: buffer), "length \(length)")
            }
        }
        // And from every alignment of a long buffer.
        let long = (0..<20_000).map { _ in UInt8.random(in: 0...255, using: &generator) }
        long.withUnsafeBytes { all in
            for start in 0..<9 {
                let part = UnsafeRawBufferPointer(rebasing: all[start..<(start + 13_000)])
                #expect(CRC32C.update(7, bytes: part) == CRC32C.tableUpdate(7, bytes: part), "start \(start)")
            }
        }
        print("CRC32C uses the crc32 instruction: \(CRC32C.usesHardware)")
    }

    @Test func bitwiseReferenceAgrees() {
        func reference(_ bytes: [UInt8]) -> UInt32 {
            var crc: UInt32 = 0xFFFF_FFFF
            for byte in bytes {
                crc ^= UInt32(byte)
                for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
            }
            return ~crc
        }
        for length in [0, 1, 5, 8, 17, 64, 4096] {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            #expect(CRC32C.checksum(bytes) == reference(bytes), "length \(length)")
        }
    }
}

@Suite struct ZeroPageScanTests {
    @Test func zeroPageIsZeroAndAnySingleByteIsNot() {
        var page = [UInt8](repeating: 0, count: 4096)
        #expect(page.withUnsafeBytes { ZeroPageScan.isZeroPage($0) })
        for position in [0, 1, 7, 8, 63, 64, 2048, 4088, 4095] {
            page[position] = 0x01
            #expect(!page.withUnsafeBytes { ZeroPageScan.isZeroPage($0) }, "byte \(position)")
            page[position] = 0
        }
    }

    @Test func oddLengthsAndTails() {
        for length in [0, 1, 9, 65, 100] {
            var bytes = [UInt8](repeating: 0, count: length)
            #expect(ZeroPageScan.isZero(bytes))
            if length > 0 {
                bytes[length - 1] = 0x80
                #expect(!ZeroPageScan.isZero(bytes), "length \(length)")
            }
        }
    }

    @Test func scansARegionOnAMemfd() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        try region.write([0x5A], at: RegionOffset(3 * 4096 + 17))
        let zero = try (0..<256).map { page in
            try region.withUnsafeBytes(at: RegionOffset(UInt64(page) * 4096), count: 4096) { ZeroPageScan.isZeroPage($0) }
        }
        #expect(zero.filter { !$0 }.count == 1)
        #expect(zero[3] == false)
    }
}

@Suite struct PageBitmapTests {
    @Test func setTestCountAndClear() {
        var bitmap = PageBitmap(pageCount: 130)
        for page: UInt64 in [0, 1, 63, 64, 129] { bitmap.insert(PageIndex(page)) }
        #expect(bitmap.setCount == 5)
        #expect(bitmap.contains(PageIndex(63)) && bitmap.contains(PageIndex(64)) && !bitmap.contains(PageIndex(65)))
        #expect(!bitmap.contains(PageIndex(130)))
        bitmap.remove(PageIndex(0))
        #expect(!bitmap.contains(PageIndex(0)) && bitmap.setCount == 4)
    }

    @Test func runsAreMaximalAndOrdered() {
        var bitmap = PageBitmap(pageCount: 300)
        let expected: [Range<UInt64>] = [0..<3, 60..<200, 255..<256, 290..<300]
        for run in expected { for page in run { bitmap.insert(PageIndex(page)) } }
        var runs: [Range<UInt64>] = []
        bitmap.forEachRun { runs.append($0.lowerBound.rawValue..<$0.upperBound.rawValue) }
        #expect(runs == expected)
        var empty: [Range<UInt64>] = []
        PageBitmap(pageCount: 64).forEachRun { empty.append($0.lowerBound.rawValue..<$0.upperBound.rawValue) }
        #expect(empty.isEmpty)
    }

    /// The clear pages of any range, word-wise, match a page-by-page look at every start and end
    /// around the word edges, and never go past the bitmap's pages.
    @Test func clearPagesOfARangeMatchAPageByPageLook() {
        var bitmap = PageBitmap(pageCount: 300)
        for page in 0..<300 where !(page % 7 == 3 || (130..<140).contains(page)) { bitmap.insert(PageIndex(UInt64(page))) }
        for start: UInt64 in [0, 1, 3, 63, 64, 65, 127, 128, 131, 200] {
            for end: UInt64 in [start, start + 1, 64, 128, 139, 192, 299, 300, 400] where end >= start {
                var clear: [UInt64] = []
                bitmap.forEachClear(in: start..<end) { clear.append($0.rawValue) }
                let expected = (start..<min(end, 300)).filter { !bitmap.contains(PageIndex($0)) }
                #expect(clear == expected, "\(start)..<\(end)")
            }
        }
    }

    /// The length of a clear stretch, a word at a time, matches counting page by page from any
    /// start to any end around the word edges; pages past the bitmap count as clear.
    @Test func clearStretchesMatchCountingPageByPage() {
        var bitmap = PageBitmap(pageCount: 300)
        for page: UInt64 in [5, 64, 65, 190, 299] { bitmap.insert(PageIndex(page)) }
        for start: UInt64 in [0, 1, 5, 6, 63, 64, 66, 127, 128, 191, 298, 299, 300, 310] {
            for end: UInt64 in [start, start + 1, 64, 66, 128, 190, 256, 299, 300, 1 << 40] where end >= start {
                // Up to the bitmap's end page by page; past it, everything is clear.
                var page = start
                while page < min(end, 300), !bitmap.contains(PageIndex(page)) { page += 1 }
                let expected = page < min(end, 300) ? page - start : end - start
                #expect(bitmap.clearCount(from: PageIndex(start), before: PageIndex(end)) == expected, "\(start)..<\(end)")
            }
        }
        #expect(PageBitmap(pageCount: 1 << 18).clearCount(from: 0, before: PageIndex(1 << 18)) == 1 << 18)
        #expect(bitmap.clearCount(from: 10, before: 3) == 0)
    }

    @Test func serializesLittleEndianLSBFirst() throws {
        var bitmap = PageBitmap(pageCount: 70)
        bitmap.insert(PageIndex(0))
        bitmap.insert(PageIndex(9))
        bitmap.insert(PageIndex(69))
        let bytes = bitmap.littleEndianBytes()
        #expect(bytes.count == 16)
        #expect(bytes[0] == 0x01 && bytes[1] == 0x02 && bytes[8] == 0x20)
        #expect(PageBitmap(pageCount: 70, littleEndianBytes: bytes) == bitmap)
        var tail = bytes
        tail[8] |= 0x80  // page 71 does not exist
        #expect(PageBitmap(pageCount: 70, littleEndianBytes: tail) == nil)
        #expect(PageBitmap(pageCount: 70, littleEndianBytes: Array(bytes.prefix(8))) == nil)
    }

    /// Read straight into words (a snapshot's bitmap), the stored form has the bytes' checksum and
    /// decodes to the same bitmap; a bit past the last page is refused the same way.
    @Test func storedWordsReadInPlaceMatchTheBytes() {
        var bitmap = PageBitmap(pageCount: 70)
        for page: UInt64 in [0, 9, 64, 69] { bitmap.insert(PageIndex(page)) }
        let bytes = bitmap.littleEndianBytes()
        let fill = { (bytes: [UInt8]) in
            PageBitmap.readStoredWords(pageCount: 70) { (span: inout MutableRawSpan) in
                for (i, byte) in bytes.enumerated() { span.storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
            }
        }
        let stored = fill(bytes)
        #expect(PageBitmap.storedChecksum(stored) == CRC32C.checksum(bytes))
        #expect(PageBitmap(pageCount: 70, storedWords: stored) == bitmap)
        var tail = bytes
        tail[8] |= 0x80
        #expect(PageBitmap(pageCount: 70, storedWords: fill(tail)) == nil)
        #expect(PageBitmap(pageCount: 130, storedWords: stored) == nil)
    }
}

/// A union keeps every page of both bitmaps and nothing else.
@Suite struct PageBitmapUnionTests {
    @Test func unionHoldsThePagesOfBoth() {
        var a = PageBitmap(pageCount: 200)
        var b = PageBitmap(pageCount: 200)
        for page in [0, 63, 64, 130] { a.insert(PageIndex(UInt64(page))) }
        for page in [1, 64, 199] { b.insert(PageIndex(UInt64(page))) }
        a.formUnion(b)
        #expect(a.setCount == 6)
        #expect([0, 1, 63, 64, 130, 199].allSatisfy { a.contains(PageIndex(UInt64($0))) })
        #expect(!a.contains(PageIndex(2)))
    }
}

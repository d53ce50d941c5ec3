import Glibc
import Testing
@testable import GuestMemory

/// What devices write into guest memory is recorded per page, taken whole, and every write
/// path records it: windows (used rings), copies into guest memory, and reads into I/O vectors.
struct HostWriteLogTests {
    private func pages(_ bitmap: PageBitmap) -> [UInt64] {
        (0..<bitmap.pageCount).filter { bitmap.contains(PageIndex($0)) }
    }

    @Test func marksEveryPageARangeTouchesAndTakesThemOnce() {
        let log = HostWriteLog(pageCount: 200)
        log.mark(offset: 4095, count: 2)             // pages 0 and 1
        log.mark(offset: 63 * 4096, count: 4096 * 3)  // 63, 64, 65: across a word
        log.mark(offset: 199 * 4096 + 10, count: 1 << 20)  // cut at the last page
        log.mark(offset: 10 * 4096, count: 0)         // nothing
        var taken = PageBitmap(pageCount: 200)
        log.take(into: &taken)
        #expect(pages(taken) == [0, 1, 63, 64, 65, 199])
        var again = PageBitmap(pageCount: 200)
        log.take(into: &again)
        #expect(pages(again).isEmpty)
        log.mark(offset: 0, count: 128 * 4096)        // whole words
        log.clear()
        log.take(into: &again)
        #expect(pages(again).isEmpty)
    }

    @Test func everyDeviceWritePathIsRecorded() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        let memory = GuestMemoryMap(regions: [region], mappings: [GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: 1 << 20, region: region, regionOffset: RegionOffset(0))])
        let window = try memory.window(at: GuestAddress(0x3000), count: 16)
        window.store(UInt32(7), at: 4)
        window.storeRelease16(1, at: 8)
        try memory.copy([1, 2, 3], from: 0, count: 3, to: GuestAddress(0x5ffe))   // pages 5 and 6
        // A read into vectors: a pipe holding 10 bytes fills part of the listed range.
        var ends: [CInt] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        #expect(write(ends[1], [UInt8](repeating: 9, count: 10), 10) == 10)
        let vectors = GuestIOVectors(capacity: 2)
        #expect(try vectors.append(GuestAddress(0x9000), length: 8192, in: memory))
        #expect(try vectors.receiveOnce(from: ends[0], subject: "pipe") == 10)
        var taken = PageBitmap(pageCount: 256)
        region.hostWrites.take(into: &taken)
        #expect(pages(taken) == [3, 5, 6, 9], "only the page the 10 bytes landed on, not the whole listed range")

        // Pages the balloon gives back read as zeros from then on: recorded too (KVM never sees a discard).
        try MemoryReclaimer().discard(GuestAddress(0x20000), length: 2 * 4096, in: memory)
        var discarded = PageBitmap(pageCount: 256)
        region.hostWrites.take(into: &discarded)
        #expect(pages(discarded) == [0x20, 0x21])
    }
}

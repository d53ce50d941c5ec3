import LinuxSystem
import Dispatch
import GuestMemory
import FoundationEssentials
import Paging
import Synchronization

/// A snapshot in an object store as a page source for a lazy (or copying) restore: each page is
/// served from its 2 MiB chunk, which is fetched once — from the host's chunk cache, or with one
/// ranged GET of its pack object — checked against its SHA-256, and kept in memory while it is
/// being used. A fault that needs a few pages of a chunk not yet here does not wait for all of
/// it: it fetches and checks just the 64 KiB parts holding them (their digests are in NAME/parts,
/// which the manifest names by its SHA-256), then the whole chunk comes for the faults that
/// follow. An unreachable store makes the faulting vCPU wait while the client retries; a chunk
/// that does not match its address stops the VM. Wrong bytes are never served.
package final class ObjectSnapshotSource: PageSource {
    package let origin: String
    package let manifest: ObjectSnapshotManifest
    let client: S3Client
    let location: ObjectLocation
    let cache: ChunkCache?
    private let bitmaps: [[ChunkPayload.Bitmap?]]
    private let resident = Locked(ResidentChunks())
    private let fetches = Atomic<UInt64>(0)
    private let partFetches = Atomic<UInt64>(0)
    /// The chunk (region << 32 | index) of the latest fault-sized read, -1 before the first.
    private let lastFaultChunk = Atomic<Int>(-1)
    /// The chunk the latest fault read-ahead started from, -1 before the first.
    private let readAheadFrom = Atomic<Int>(-1)
    /// The chunks' part digests once `NAME/parts` has arrived and matched the manifest; until then
    /// (and for good if it is missing or damaged) faults take whole chunks.
    private let parts = Locked<PartDigests?>(nil)
    /// Given once the part digests have arrived, or will not.
    private let partsSettled = DispatchSemaphore(value: 0)
    private let cacheHits = Atomic<UInt64>(0)
    /// Writes chunks into the host's cache off the fault path, on a thread made here (on the
    /// restoring thread, control role), so the writes are not held to the fault handler's
    /// system-call filter.
    private let cacheWriter: SerialWorker?

    /// Chunks kept in memory (stored bytes, up to 2 MiB each).
    static let residentLimit = 64
    /// Chunks waiting for the cache's writer at most (up to 256 MiB).
    static let pendingCacheWrites = 128
    /// Parts a fault fetches at most ahead of its chunk (256 KiB); a read wanting more (a copy, the
    /// fill, a huge page) takes the whole chunk.
    static let maximumFaultParts = 4

    package init(client: S3Client, location: ObjectLocation, cache: ChunkCache?) throws(ObjectSnapshotError) {
        self.client = client
        self.location = location
        self.cache = cache
        do { cacheWriter = try cache.map { _ throws(SystemError) in try SerialWorker(name: "chunk-cache", role: .control) } } catch {
            throw .local("cannot start the chunk cache's writer: \(error)")
        }
        // The writer runs at the normal priority: its writes go past the page cache, so a chunk costs
        // it a 2 MiB copy and a wait for the device. At nice 19 each wait's wake-up queued behind
        // the fill on a busy host, the queue overflowed and a cold 512 MiB restore cached 98 of its
        // 258 chunks; at the normal priority it cached them all and took no longer (medians of 4).
        origin = "s3://\(location.bucket)/\(location.key)"
        let bytes: [UInt8]
        do { bytes = try client.getObject(location.appending("manifest")) } catch {
            if case .notFound = error { throw .missing(origin) }
            throw .store(error)
        }
        manifest = try ObjectSnapshotManifest.decode(bytes, origin: origin)
        bitmaps = manifest.regions.map { $0.chunks.map { $0.flatMap { ChunkPayload.bitmap($0.pages) } } }
        loadPartDigests()
    }

    /// Fetches `NAME/parts` on a thread made here (the restoring thread's role), so the guest can
    /// start before it arrives.
    private func loadPartDigests() {
        guard manifest.partDigests != nil else {
            partsSettled.signal()
            return
        }
        let load: @Sendable () -> Void = { [self] in
            let digests = (try? client.getObject(location.appending("parts"))).flatMap { PartDigests.decode($0, for: manifest) }
            parts.withLock { $0 = digests }
            partsSettled.signal()
        }
        if (try? NamedThread.spawnDetached(name: "part-digests", role: .control, load)) == nil { load() }
    }

    /// Waits until the part digests have arrived or will not; true if faults can use them.
    package func waitForPartDigests() -> Bool {
        partsSettled.wait()
        partsSettled.signal()
        return parts.withLock { $0 != nil }
    }

    package var regionCount: Int { manifest.regions.count }

    package func pageCount(region: Int) -> UInt64 { manifest.regions[region].sizeInBytes / PageSize.bytes64 }

    package func isZeroPage(region: Int, page index: PageIndex) -> Bool {
        let page = index.rawValue
        let chunk = Int(page / ObjectSnapshotManifest.chunkPages)
        guard let bitmap = bitmaps[region][chunk] else { return true }
        return !bitmap.contains(Int(page % ObjectSnapshotManifest.chunkPages))
    }

    /// A chunk with no data is stepped over whole.
    package func zeroPageCount(region: Int, from start: PageIndex, before end: PageIndex) -> UInt64 {
        var page = start.rawValue
        while page < end.rawValue {
            let chunk = Int(page / ObjectSnapshotManifest.chunkPages)
            guard chunk < bitmaps[region].count, let bitmap = bitmaps[region][chunk] else {
                page = UInt64(chunk + 1) * ObjectSnapshotManifest.chunkPages
                continue
            }
            guard !bitmap.contains(Int(page % ObjectSnapshotManifest.chunkPages)) else { break }
            page += 1
        }
        return min(page, end.rawValue) - min(start.rawValue, end.rawValue)  // 0 for an empty or backward range, as the others
    }

    package func readPages(region: Int, firstPage start: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        let firstPage = start.rawValue
        let count = UInt64(buffer.byteCount / PageSize.bytes)
        guard firstPage <= pageCount(region: region), count <= pageCount(region: region) - firstPage else {
            throw .remote("\(origin): pages \(firstPage)..<\(firstPage + count) are past the end of region \(manifest.regions[region].name)")
        }
        // A read over several chunks (a copy restore's batch) fetches those not here in one GET.
        let chunks = count == 0 ? 0..<0
            : Int(firstPage / ObjectSnapshotManifest.chunkPages)..<Int((firstPage + count - 1) / ObjectSnapshotManifest.chunkPages) + 1
        if chunks.count > 1 { startLoading(region: region, chunks: chunks, threadName: "chunk-fetch") }
        var page = firstPage
        while page < firstPage + count {
            let chunkIndex = Int(page / ObjectSnapshotManifest.chunkPages)
            let chunkEnd = min(UInt64(chunkIndex + 1) * ObjectSnapshotManifest.chunkPages, firstPage + count)
            let part = Int(page - firstPage) * PageSize.bytes..<Int(chunkEnd - firstPage) * PageSize.bytes
            if let bitmap = bitmaps[region][chunkIndex] {
                let inChunk = Int(page % ObjectSnapshotManifest.chunkPages)
                let ranks = Self.rank(bitmap, below: inChunk)..<Self.rank(bitmap, below: inChunk + Int(chunkEnd - page))
                // The stored bytes holding `ranks`, and the rank the first of them belongs to.
                let (stored, firstRank) = ranks.isEmpty
                    ? ([], 0) : try storedPages(region: region, index: chunkIndex, ranks: ranks, mayTakeParts: chunks.count == 1)
                for offset in 0..<Int(chunkEnd - page) {
                    buffer.withBytes(in: part.lowerBound + offset * PageSize.bytes..<part.lowerBound + (offset + 1) * PageSize.bytes) { target in
                        if bitmap.contains(inChunk + offset) {
                            // The manifest check guarantees one stored page per set bit.
                            let rank = Self.rank(bitmap, below: inChunk + offset) - firstRank
                            target.copyBytes(from: stored, range: rank * PageSize.bytes..<(rank + 1) * PageSize.bytes)
                        } else {
                            target.zeroBytes()
                        }
                    }
                }
            } else {
                buffer.withBytes(in: part) { $0.zeroBytes() }
            }
            page = chunkEnd
        }
    }

    /// The background fill reads memory in order: while it copies one chunk, the next blocks of
    /// chunks are on their way, so a fill is not one round trip per 2 MiB after another (it reads
    /// ahead by itself, so the read named next adds nothing).
    package func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting _: PageRun?) throws(PageSourceError) {
        let block = Int(firstPage.rawValue / ObjectSnapshotManifest.chunkPages) / Self.blockChunks
        // Ramping up: the guest's first faults, which fetch small parts, do not queue behind 48 MiB.
        for ahead in 0...min(block, Self.readAheadBlocks) { startLoading(region: region, block: block + ahead, threadName: "chunk-ahead") }
        try readPages(region: region, firstPage: firstPage, into: &buffer)
    }

    /// No: the fill's fetches and SHA-256 checks run on threads the fill makes, which would take
    /// its low priority. On a busy host a starved fill leaves the guest to fault its way through
    /// memory 64 KiB at a time, which costs more CPU per byte than the fill, not less: a cold
    /// 512 MiB restore beside SeaweedFS on 2 cores took 1657 ms (median of 8) with about 1000
    /// demand faults at nice 10, 1350 ms with 5–16 at the normal priority.
    package var backgroundReadsYield: Bool { false }

    /// Chunks fetched together, 16 MiB: a run of chunks that lie next to each other in one pack
    /// comes in one ranged GET. The store's work goes by requests more than by bytes: SeaweedFS
    /// here spends about half the CPU time serving 512 MiB in 16 MiB ranges that it spends in
    /// 2 MiB ones, and on a host whose cores the store shares with the guest that is the restore's pace.
    static let blockChunks = 8
    /// Blocks fetched ahead of the one the fill is in (16 to 24 chunks), fewer in the first two.
    static let readAheadBlocks = 2

    /// Starts fetching every chunk `pages` need, four at a time, before they are streamed.
    package func streamPages(_ pages: [PageReference]) throws(PageSourceError) -> any PageStream {
        var seen = Set<Int>()
        let wanted = pages.compactMap { reference -> (Int, Int)? in
            let chunk = Int(reference.page.rawValue / ObjectSnapshotManifest.chunkPages)
            guard bitmaps[reference.region][chunk] != nil, seen.insert(reference.region << 32 | chunk).inserted else { return nil }
            return (reference.region, chunk)
        }
        let lanes = 4
        let threads = (0..<lanes).compactMap { lane in
            try? NamedThread.spawn(name: "chunk-lane-\(lane)", role: .pageFault) { [self] in
                for index in stride(from: lane, to: wanted.count, by: lanes) { _ = try? chunk(region: wanted[index].0, index: wanted[index].1) }
            }
        }
        for thread in threads { thread.join() }
        // Whatever a lane could not start is fetched as the stream reaches it.
        return PageByPageStream(source: self, pages: pages)
    }

    package func loadWorkingSet() throws(PageSourceError) -> WorkingSet? {
        let bytes: [UInt8]
        do { bytes = try client.getObject(location.appending("workingset")) } catch {
            if case .notFound = error { return nil }
            throw .remote("\(origin): \(error)")
        }
        let set = try WorkingSet(decoding: bytes, origin: "\(origin)/workingset")
        guard set.fingerprint == manifest.fingerprint else {
            throw .workingSet("\(origin)/workingset belongs to another snapshot")
        }
        return set
    }

    package func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError) {
        do { try client.putObject(location.appending("workingset"), body: set.encoded()) } catch {
            throw .remote("\(origin): cannot store the working set: \(error)")
        }
    }

    package var transferStatistics: PageTransferStatistics? {
        let statistics = client.statistics
        return PageTransferStatistics(bytesReceived: statistics.bytesReceived, bytesSent: statistics.bytesSent,
                                      requests: statistics.requests, pagesReceived: fetches.load(ordering: .relaxed) * ObjectSnapshotManifest.chunkPages,
                                      reconnects: statistics.retries)
    }

    /// Waits until every fetched chunk is in the host's cache.
    package func waitForCacheWrites() { cacheWriter?.waitUntilIdle() }

    /// Chunks fetched from the store and found in the host's cache so far, and part fetches faults made ahead of their chunks.
    package var chunkCounts: (fetched: UInt64, fromCache: UInt64, partFetches: UInt64) {
        (fetches.load(ordering: .relaxed), cacheHits.load(ordering: .relaxed), partFetches.load(ordering: .relaxed))
    }

    // MARK: Chunks

    /// The number of stored pages before `page` in the chunk.
    static func rank(_ bitmap: ChunkPayload.Bitmap, below page: Int) -> Int {
        var count = 0
        for word in 0..<page / 64 { count += bitmap.words[word].nonzeroBitCount }
        let rest = page % 64
        if rest > 0 { count += (bitmap.words[page / 64] & ((1 << UInt64(rest)) - 1)).nonzeroBitCount }
        return count
    }

    /// The stored pages of chunk `index` that `ranks` counts (stored page numbers), as bytes that
    /// begin with stored page `firstRank`: the whole chunk when it is here or a read wants much of
    /// it; else, for a read within one chunk (a fault's), just the parts holding them, fetched and
    /// checked now, after which the whole chunk is fetched on another thread for the reads that
    /// follow. A read over several chunks (a copy's) has started their GET and waits for it.
    private func storedPages(region: Int, index: Int, ranks: Range<Int>, mayTakeParts: Bool) throws(PageSourceError) -> (bytes: [UInt8], firstRank: Int) {
        let pagesPerPart = ChunkPayload.partBytes / PageSize.bytes
        let wanted = ranks.lowerBound / pagesPerPart..<(ranks.upperBound - 1) / pagesPerPart + 1
        let key = region << 32 | index
        let fault = mayTakeParts && wanted.count <= Self.maximumFaultParts
        // A chunk in memory or in the host's cache answers sooner than parts from the store.
        guard fault, let described = manifest.regions[region].chunks[index], let digests = parts.withLock({ $0 }),
              !resident.withLock({ $0.isLoaded(key) }), !(cache?.contains(described.hash) ?? false) else {
            // A guest reading memory in order finds the next chunks here, or on their way, when it gets there.
            if fault { readAhead(region: region, after: index) }
            return (try chunk(region: region, index: index), 0)
        }
        // A part that does not arrive or does not match is left to the whole chunk, which retries
        // and reports: one path for every failure.
        guard let bytes = try? fetchParts(wanted, of: described, digests: { digests.digest(region: region, chunk: index, part: $0) }) else {
            return (try chunk(region: region, index: index), 0)
        }
        // The whole chunk (and the next) only now, so their megabytes do not compete with this fault's parts.
        startLoading(region: region, index: index)
        readAhead(region: region, after: index)
        partFetches.add(1, ordering: .relaxed)
        return (bytes, wanted.lowerBound * pagesPerPart)
    }

    /// Parts `parts` of a chunk in one ranged GET, each checked against its digest; nil if one is wrong.
    private func fetchParts(
        _ parts: Range<Int>, of chunk: ObjectSnapshotManifest.Chunk, digests: (Int) -> ArraySlice<UInt8>?
    ) throws(ObjectStoreError) -> [UInt8]? {
        let partBytes = ChunkPayload.partBytes
        let start = UInt64(parts.lowerBound * partBytes)
        let end = min(UInt64(parts.upperBound * partBytes), chunk.length)
        let bytes = try client.getObject(ObjectLocation(bucket: location.bucket, uncheckedKey: chunk.pack),
                                         range: chunk.offset + start..<chunk.offset + end)
        for (number, part) in parts.enumerated() {
            let slice = bytes[number * partBytes..<min((number + 1) * partBytes, bytes.count)]
            guard let expected = digests(part), ChunkPayload.partDigest(slice) == Array(expected) else { return nil }
        }
        return bytes
    }

    /// Chunks fetched ahead of a fault's.
    static let faultReadAheadChunks = 4

    /// Starts fetching the chunks after chunk `index`, for a guest reading on from a fault there,
    /// once its faults go in order (this one in the chunk of the previous, or the next): scattered
    /// first faults (a restored guest's code and stacks) then do not compete with 8 MiB of fetches.
    private func readAhead(region: Int, after index: Int) {
        let key = region << 32 | index
        let previous = lastFaultChunk.exchange(key, ordering: .relaxed)
        // Once per chunk: the faults after the first in order find their read-ahead under way.
        guard previous == key || previous == key - 1, readAheadFrom.exchange(key, ordering: .relaxed) != key else { return }
        // A chunk per GET: a fault that finds its chunk still on the way fetches parts, which would
        // wait behind a 16 MiB block's (demand-fault p99 0.57–0.78 ms with single chunks, 1.5–1.8 with blocks).
        for ahead in 1...Self.faultReadAheadChunks { startLoading(region: region, index: index + ahead) }
    }

    /// Starts fetching chunk `index` on a thread of its own unless it is here, under way, all zero or past the region's end.
    private func startLoading(region: Int, index: Int) {
        startLoading(region: region, chunks: index..<index + 1, threadName: "chunk-fetch")
    }

    /// Starts fetching the chunks of block `block` that are not here or under way.
    private func startLoading(region: Int, block: Int, threadName: String) {
        startLoading(region: region, chunks: block * Self.blockChunks..<(block + 1) * Self.blockChunks, threadName: threadName)
    }

    /// Starts fetching the chunks in `chunks` that hold data and are not here or under way: those
    /// in the host's cache one by one, the others in runs that lie next to each other in one pack,
    /// one ranged GET and one thread per run.
    private func startLoading(region: Int, chunks: Range<Int>, threadName: String) {
        let described = manifest.regions[region].chunks
        let indices = chunks.clamped(to: 0..<described.count).filter { index in
            described[index] != nil && !resident.withLock { $0.contains(region << 32 | index) }
        }
        guard !indices.isEmpty else { return }
        let cached = Set(indices.filter { cache?.contains(described[$0]!.hash) ?? false })
        let claimed = resident.withLock { chunks in
            indices.compactMap { index -> ClaimedChunk? in
                let (slot, loads) = chunks.slot(for: region << 32 | index)
                return loads ? ClaimedChunk(index: index, slot: slot) : nil
            }
        }
        var run: [ClaimedChunk] = []
        for chunk in claimed {
            // The cache's chunks come on their own: a local file.
            let joins = run.last.map { last in
                !cached.contains(chunk.index) && !cached.contains(last.index) && described[last.index]!.isFollowed(by: described[chunk.index]!)
            } ?? true
            if !joins {
                start(run, region: region, threadName: threadName)
                run = []
            }
            run.append(chunk)
        }
        start(run, region: region, threadName: threadName)
    }

    /// Loads the claimed `run` on a thread of its own (here, if none can be made).
    private func start(_ run: [ClaimedChunk], region: Int, threadName: String) {
        guard !run.isEmpty else { return }
        let started = try? NamedThread.spawnDetached(name: threadName, role: .pageFault) { [self] in load(run, region: region) }
        if started == nil { load(run, region: region) }
    }

    /// The stored bytes of a chunk: resident, or loaded by the first thread that asks while the others wait.
    private func chunk(region: Int, index: Int) throws(PageSourceError) -> [UInt8] {
        let key = region << 32 | index
        let (slot, loads) = resident.withLock { $0.slot(for: key) }
        if loads { load(into: slot, key: key, region: region, index: index) }
        return try slot.wait()
    }

    /// Loads a chunk into its slot, waking its waiters; a failed load is forgotten, so a later read tries again.
    private func load(into slot: ChunkSlot, key: Int, region: Int, index: Int) {
        let result: Result<[UInt8], PageSourceError>
        do throws(PageSourceError) { result = .success(try load(region: region, index: index)) } catch { result = .failure(error) }
        finish(slot, key: key, result)
    }

    private func finish(_ slot: ChunkSlot, key: Int, _ result: Result<[UInt8], PageSourceError>) {
        slot.finish(result)
        if case .failure = result { resident.withLock { $0.forget(key) } }
    }

    /// Loads a run of claimed chunks that follow each other in one pack with one ranged GET,
    /// checking each against its own address; a single chunk takes the path that also reads the cache.
    private func load(_ run: [ClaimedChunk], region: Int) {
        let chunks = manifest.regions[region].chunks
        guard run.count > 1, let first = chunks[run[0].index], let last = chunks[run[run.count - 1].index] else {
            for chunk in run { load(into: chunk.slot, key: region << 32 | chunk.index, region: region, index: chunk.index) }
            return
        }
        let pieces: [[UInt8]]
        do {
            pieces = try client.getObject(ObjectLocation(bucket: location.bucket, uncheckedKey: first.pack), range: first.offset..<last.offset + last.length,
                                          pieces: run.map { Int(chunks[$0.index]!.length) })
        } catch {
            let failure = PageSourceError.remote("\(origin): chunks \(run[0].index)...\(run[run.count - 1].index) of region \(manifest.regions[region].name): \(error)")
            for chunk in run { finish(chunk.slot, key: region << 32 | chunk.index, .failure(failure)) }
            return
        }
        for (chunk, bytes) in zip(run, pieces) {
            let result: Result<[UInt8], PageSourceError>
            do throws(PageSourceError) { result = .success(try checked(bytes, region: region, index: chunk.index)) } catch { result = .failure(error) }
            finish(chunk.slot, key: region << 32 | chunk.index, result)
        }
    }

    private func load(region: Int, index: Int) throws(PageSourceError) -> [UInt8] {
        guard let chunk = manifest.regions[region].chunks[index], let bitmap = bitmaps[region][index] else { return [] }
        if let cached = cache?.get(chunk.hash, bitmap: bitmap) {
            cacheHits.add(1, ordering: .relaxed)
            return cached
        }
        let bytes: [UInt8]
        do {
            bytes = try client.getObject(ObjectLocation(bucket: location.bucket, uncheckedKey: chunk.pack), range: chunk.offset..<chunk.offset + chunk.length)
        } catch {
            throw .remote("\(origin): chunk \(index) of region \(manifest.regions[region].name): \(error)")
        }
        return try checked(bytes, region: region, index: index)
    }

    /// A chunk's bytes from the store once they match its length and address, handed to the cache.
    private func checked(_ bytes: [UInt8], region: Int, index: Int) throws(PageSourceError) -> [UInt8] {
        guard let chunk = manifest.regions[region].chunks[index], let bitmap = bitmaps[region][index] else { return [] }
        guard UInt64(bytes.count) == chunk.length, ChunkPayload.hash(bitmap: bitmap, stored: bytes) == chunk.hash else {
            throw .remote("\(origin): chunk \(index) of region \(manifest.regions[region].name) (object \(chunk.pack)) is corrupt: its SHA-256 does not match the manifest")
        }
        fetches.add(1, ordering: .relaxed)
        // Writing 2 MiB into the host's cache is slow on some file systems: off the fault path. A
        // writer that falls behind skips chunks rather than holding them all in memory.
        if let cache, let cacheWriter {
            _ = cacheWriter.submit({ cache.put(chunk.hash, bytes: bytes) }, ifFewerThan: Self.pendingCacheWrites)
        }
        return bytes
    }
}

/// A chunk whose slot this thread made, and so must fill.
private struct ClaimedChunk: Sendable {
    let index: Int
    let slot: ChunkSlot
}

extension ObjectSnapshotManifest.Chunk {
    /// Whether `next` lies right after this chunk in the same pack, so one ranged GET reads both.
    func isFollowed(by next: Self) -> Bool { next.pack == pack && next.offset == offset + length }
}

/// The chunks held in memory, least recently used first out.
struct ResidentChunks {
    private var slots: [Int: ChunkSlot] = [:]
    private var order: [Int] = []

    /// The slot for `key`, and whether the caller must load it.
    mutating func slot(for key: Int) -> (ChunkSlot, Bool) {
        if let slot = slots[key] {
            if let position = order.firstIndex(of: key) { order.remove(at: position); order.append(key) }
            return (slot, false)
        }
        let slot = ChunkSlot()
        slots[key] = slot
        order.append(key)
        while order.count > ObjectSnapshotSource.residentLimit { slots[order.removeFirst()] = nil }
        return (slot, true)
    }

    func contains(_ key: Int) -> Bool { slots[key] != nil }

    /// Whether chunk `key` has arrived (and stayed).
    func isLoaded(_ key: Int) -> Bool { slots[key]?.isFinished ?? false }

    mutating func forget(_ key: Int) {
        slots[key] = nil
        order.removeAll { $0 == key }
    }
}

/// One chunk being loaded or loaded: waiters block until the loader finishes.
final class ChunkSlot: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let result = Locked<Result<[UInt8], PageSourceError>?>(nil)

    var isFinished: Bool { result.withLock { $0 != nil } }

    func finish(_ value: Result<[UInt8], PageSourceError>) {
        result.withLock { $0 = value }
        done.signal()
    }

    func wait() throws(PageSourceError) -> [UInt8] {
        done.wait()
        done.signal()
        return try result.withLock { $0! }.get()
    }
}

extension ObjectLocation {
    /// A location inside a bucket already checked (keys Engram itself made).
    init(bucket: String, uncheckedKey: String) {
        self.bucket = bucket
        self.key = uncheckedKey
    }
}

import Glibc
import GuestMemory
import LinuxSystem
import Paging
import Synchronization

/// A page server as a page source: a lazy restore's faults and fill fetch pages with READ, a
/// working set comes in one LIST stream, each page's CRC32C checked on arrival. Each calling
/// thread takes a connection of its own from a small pool; a lost connection blocks the call
/// (and so the faulting vCPU) until the connector has the server back, then the request is
/// sent again.
package final class RemotePageSource: PageSource {
    package let manifest: SnapshotManifest
    let connector: PageServerConnector
    /// Idle connections for faults, and for the background fill and prefetch (served at lower priority).
    private let idle = Locked<[FramedConnection]>([])
    private let idleBackground = Locked<[FramedConnection]>([])
    /// Background READs already sent whose replies have not been read, with their connections,
    /// by the fill thread that will read each (one per thread at most).
    private let ahead = Locked<[Ahead]>([])
    private let received = Atomic<UInt64>(0)
    private let sent = Atomic<UInt64>(0)
    private let requests = Atomic<UInt64>(0)
    private let pagesReceived = Atomic<UInt64>(0)

    /// Connects to the server behind `connector` and reads the snapshot's manifest.
    package init(connector: PageServerConnector) throws(TransportError) {
        self.connector = connector
        let connection = try connector.connect()
        try connection.sendFrame(.manifestRequest, [])
        manifest = try SnapshotManifest(
            decoding: try connection.readFrame(.manifest, maximumLength: WireProtocol.maximumReplyLength), peer: connection.peer)
        idle.withLock { $0.reserveCapacity(8) }
        idleBackground.withLock { $0.reserveCapacity(8) }
        ahead.withLock { $0.reserveCapacity(8) }
        giveBack(connection, before: (0, 0), background: false)
    }

    package var regionCount: Int { manifest.regions.count }

    package func pageCount(region: Int) -> UInt64 { manifest.regions[region].pageCount }

    package func isZeroPage(region: Int, page: PageIndex) -> Bool { !manifest.dataPages[region].contains(page) }

    package func zeroPageCount(region: Int, from start: PageIndex, before end: PageIndex) -> UInt64 {
        manifest.dataPages[region].clearCount(from: start, before: end)
    }

    package func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        try read(region: region, firstPage: firstPage, into: &buffer, background: false)
    }

    package var asksForReadsAhead: Bool { true }

    /// Two fill threads, each on a connection of its own: decrypting, checking and installing a
    /// batch cost this side a core's worth, which the second thread's batch shares.
    package var backgroundReadThreads: Int { 2 }

    /// Sends READ for `next` behind this read's, on the same connection, before reading this
    /// read's pages: the server reads and sends (and over TLS, encrypts) the next batch while
    /// this side checks and installs this one, and no batch waits for a round trip.
    package func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, thenExpecting next: PageRun?) throws(PageSourceError) {
        let run = PageRun(region: region, firstPage: firstPage, count: buffer.byteCount / PageSize.bytes)
        // Nothing to read, and a READ asked for ahead stays this thread's next.
        guard run.count > 0 else { return }
        let thread = pthread_self()
        var pending = ahead.withLock { list -> Ahead? in
            guard let index = list.firstIndex(where: { $0.thread == thread }) else { return nil }
            return list.remove(at: index)
        }
        if let asked = pending, asked.run != run {
            discardReply(to: asked, using: &buffer)
            pending = nil
        }
        guard run.count <= WireProtocol.maximumReadPages, (next?.count ?? 0) <= WireProtocol.maximumReadPages else {
            if let pending { discardReply(to: pending, using: &buffer) }
            return try read(region: region, firstPage: firstPage, into: &buffer, background: true)
        }
        let asked = pending != nil
        let connection = try attempt(on: pending?.connection, background: true) { (connection, isNew) throws(TransportError) in
            if !asked || isNew { try connection.sendRead(run) }
            if let next { try connection.sendRead(next) }
            try receive(run, on: connection, into: &buffer)
        }
        pagesReceived.add(UInt64(run.count), ordering: .relaxed)
        if let next {
            ahead.withLock { $0.append(Ahead(thread: thread, connection: connection, run: next)) }
        } else {
            pool(connection, background: true)
        }
    }

    private func read(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, background: Bool) throws(PageSourceError) {
        let count = buffer.byteCount / PageSize.bytes
        var done = 0
        while done < count {
            let run = PageRun(region: region, firstPage: firstPage + UInt64(done), count: min(count - done, WireProtocol.maximumReadPages))
            let part = done * PageSize.bytes..<(done + run.count) * PageSize.bytes
            try withConnection(background: background) { (connection) throws(TransportError) in
                try connection.sendRead(run)
                try buffer.withBytes(in: part) { (pages) throws(TransportError) in try receive(run, on: connection, into: &pages) }
            }
            pagesReceived.add(UInt64(run.count), ordering: .relaxed)
            done += run.count
        }
    }

    /// Reads the PAGES frame answering READ `run` into `buffer`, checking each page's reference and CRC32C.
    private func receive(_ run: PageRun, on connection: FramedConnection, into buffer: inout MutableRawSpan) throws(TransportError) {
        let frame = try connection.beginPages()
        guard frame == run.count else {
            throw .malformed(peer: connection.peer, reason: "asked for \(run.count) pages, got \(frame)")
        }
        for index in 0..<run.count {
            let expected = PageReference(region: run.region, page: run.firstPage + UInt64(index)).packed
            guard connection.pageRecord(index).reference == expected else {
                throw .malformed(peer: connection.peer, reason: "sent page 0x\(String(connection.pageRecord(index).reference, radix: 16)) for 0x\(String(expected, radix: 16))")
            }
        }
        try connection.readExactly(into: &buffer)
        try Self.checkCRCs(buffer.bytes, connection: connection, firstRecord: 0)
    }

    /// Reads and drops the reply to a READ sent ahead that the caller did not ask for after all
    /// (`buffer` is scratch here), then pools the connection; one that fails meanwhile is dropped.
    private func discardReply(to asked: Ahead, using buffer: inout MutableRawSpan) {
        let connection = asked.connection
        let before = (connection.bytesReceived, connection.bytesSent)
        do throws(TransportError) {
            var left = try connection.beginPages() * PageSize.bytes
            while left > 0 {
                let piece = min(left, buffer.byteCount)
                try buffer.withBytes(in: 0..<piece) { (bytes) throws(TransportError) in try connection.readExactly(into: &bytes) }
                left -= piece
            }
            giveBack(connection, before: before, background: true)
        } catch {
            count(connection, before: before)
        }
    }

    package func streamPages(_ pages: [PageReference]) throws(PageSourceError) -> any PageStream {
        RemotePageStream(source: self, references: pages)
    }

    package func loadWorkingSet() throws(PageSourceError) -> WorkingSet? {
        var payload: [UInt8] = []
        try withConnection { (connection) throws(TransportError) in
            try connection.sendFrame(.getWorkingSet, [])
            payload = try connection.readFrame(.workingSet, maximumLength: WireProtocol.maximumRequestLength)
        }
        guard !payload.isEmpty else { return nil }
        let set = try WorkingSet(decoding: payload, origin: "the working set from \(connector.endpoint)")
        try set.check(against: self, fingerprint: manifest.fingerprint)
        return set
    }

    package func storeWorkingSet(_ set: WorkingSet) throws(PageSourceError) {
        try set.check(against: self, fingerprint: manifest.fingerprint)
        try withConnection { (connection) throws(TransportError) in
            try connection.sendFrame(.putWorkingSet, set.encoded())
            _ = try connection.readFrame(.ok, maximumLength: 0)
        }
    }

    package var transferStatistics: PageTransferStatistics? {
        PageTransferStatistics(
            bytesReceived: received.load(ordering: .relaxed), bytesSent: sent.load(ordering: .relaxed),
            requests: requests.load(ordering: .relaxed), pagesReceived: pagesReceived.load(ordering: .relaxed),
            reconnects: connector.reconnects.load(ordering: .relaxed))
    }

    /// Runs `body` on a pooled connection; on a lost connection, reconnects and runs it again.
    func withConnection(background: Bool = false, _ body: (FramedConnection) throws(TransportError) -> Void) throws(PageSourceError) {
        let connection = try attempt(on: nil, background: background) { (connection, _) throws(TransportError) in try body(connection) }
        pool(connection, background: background)
    }

    /// Runs `body` on `given` (a pooled connection if nil); on a lost connection, reconnects and
    /// runs it again, telling `body` its connection is new. Returns the connection `body`
    /// succeeded on, its traffic counted, for the caller to pool or keep.
    private func attempt(
        on given: FramedConnection?, background: Bool, _ body: (FramedConnection, _ isNew: Bool) throws(TransportError) -> Void
    ) throws(PageSourceError) -> FramedConnection {
        do {
            var connection: FramedConnection
            if let given { connection = given } else { connection = try take(background: background) }
            var isNew = false
            var outage: Int?
            while true {
                let before = (connection.bytesReceived, connection.bytesSent)
                do {
                    try body(connection, isNew)
                    requests.add(1, ordering: .relaxed)
                    count(connection, before: before)
                    return connection
                } catch where error.isConnectionLoss {
                    count(connection, before: before)
                    connection = try connector.reconnect(after: error, background: background, outage: &outage)
                    isNew = true
                }
            }
        } catch {
            throw .remote("page server \(connector.endpoint): \(error)")
        }
    }

    /// An idle connection, or a new one.
    func take(background: Bool) throws(TransportError) -> FramedConnection {
        let pooled = background ? idleBackground.withLock { $0.popLast() } : idle.withLock { $0.popLast() }
        if let pooled { return pooled }
        do { return try connector.connect(background: background) } catch where error.isConnectionLoss {
            return try connector.reconnect(after: error, background: background)
        }
    }

    /// Returns a healthy connection to its pool, counting what it moved.
    func giveBack(_ connection: FramedConnection, before: (UInt64, UInt64), background: Bool) {
        count(connection, before: before)
        pool(connection, background: background)
    }

    private func pool(_ connection: FramedConnection, background: Bool) {
        if background {
            idleBackground.withLock { $0.append(connection) }
        } else {
            idle.withLock { $0.append(connection) }
        }
    }

    func count(_ connection: FramedConnection, before: (UInt64, UInt64)) {
        received.add(connection.bytesReceived - before.0, ordering: .relaxed)
        sent.add(connection.bytesSent - before.1, ordering: .relaxed)
    }

    func countPages(_ pages: Int) { pagesReceived.add(UInt64(pages), ordering: .relaxed) }

    /// Checks each page of `data` against the CRC32C in the frame's records from `firstRecord`.
    static func checkCRCs(_ data: RawSpan, connection: FramedConnection, firstRecord: Int) throws(TransportError) {
        let pageSize = PageSize.bytes
        for index in 0..<data.byteCount / pageSize {
            let computed = CRC32C.checksum(data.extracting(index * pageSize..<(index + 1) * pageSize))
            let record = connection.pageRecord(firstRecord + index)
            guard computed == record.crc else {
                let reference = PageReference(packed: record.reference)
                throw .malformed(peer: connection.peer, reason: "page \(reference.page) of region \(reference.region) arrived damaged (CRC32C 0x\(String(computed, radix: 16)), sent as 0x\(String(record.crc, radix: 16)))")
            }
        }
    }
}

/// A READ sent ahead of the call that will read its reply: `thread`'s next background read.
private struct Ahead {
    let thread: pthread_t
    let connection: FramedConnection
    let run: PageRun
}

import LinuxSystem
import GuestMemory
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
    private let idle = Mutex<[FramedConnection]>([])
    private let idleBackground = Mutex<[FramedConnection]>([])
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
        giveBack(connection, before: (0, 0), background: false)
    }

    package var regionCount: Int { manifest.regions.count }

    package func pageCount(region: Int) -> UInt64 { manifest.regions[region].pageCount }

    package func isZeroPage(region: Int, page: PageIndex) -> Bool { !manifest.dataPages[region].contains(page) }

    package func readPages(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        try read(region: region, firstPage: firstPage, into: &buffer, background: false)
    }

    package func readPagesInBackground(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan) throws(PageSourceError) {
        try read(region: region, firstPage: firstPage, into: &buffer, background: true)
    }

    private func read(region: Int, firstPage: PageIndex, into buffer: inout MutableRawSpan, background: Bool) throws(PageSourceError) {
        let count = buffer.byteCount / PageSize.bytes
        var done = 0
        while done < count {
            let chunk = min(count - done, WireProtocol.maximumReadPages)
            let part = done * PageSize.bytes..<(done + chunk) * PageSize.bytes
            try withConnection(background: background) { (connection) throws(TransportError) in
                try connection.sendRead(region: UInt32(region), firstPage: firstPage + UInt64(done), count: UInt32(chunk))
                let frame = try connection.beginPages()
                guard frame == chunk else {
                    throw .malformed(peer: connection.peer, reason: "asked for \(chunk) pages, got \(frame)")
                }
                for index in 0..<chunk {
                    let expected = PageReference(region: region, page: firstPage + UInt64(done + index)).packed
                    guard connection.pageRecord(index).reference == expected else {
                        throw .malformed(peer: connection.peer, reason: "sent page 0x\(String(connection.pageRecord(index).reference, radix: 16)) for 0x\(String(expected, radix: 16))")
                    }
                }
                try buffer.withBytes(in: part) { (pages) throws(TransportError) in
                    try connection.readExactly(into: &pages)
                    try Self.checkCRCs(pages.bytes, connection: connection, firstRecord: 0)
                }
            }
            pagesReceived.add(UInt64(chunk), ordering: .relaxed)
            done += chunk
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
        do {
            var connection = try take(background: background)
            while true {
                let before = (connection.bytesReceived, connection.bytesSent)
                do {
                    try body(connection)
                    requests.add(1, ordering: .relaxed)
                    giveBack(connection, before: before, background: background)
                    return
                } catch where error.isConnectionLoss {
                    count(connection, before: before)
                    connection = try connector.reconnect(after: error, background: background)
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

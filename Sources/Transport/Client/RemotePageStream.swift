import LinuxSystem
import Paging

/// A working set arriving from a page server: one LIST request, answered by PAGES frames in
/// the list's order, taken a few pages at a time as the fill installs them. If the connection
/// is lost, the pages not yet delivered are asked for again on a new one.
struct RemotePageStream: PageStream {
    let source: RemotePageSource
    let references: [PageReference]
    private var connection: FramedConnection?
    private var delivered = 0
    /// Pages of the current frame not yet read, and the record of the next one.
    private var frameLeft = 0
    private var frameRecord = 0
    private var before: (UInt64, UInt64) = (0, 0)
    /// When the stream lost its connection with no page delivered since (nil: pages came).
    private var outage: Int?

    init(source: RemotePageSource, references: [PageReference]) {
        precondition(references.count <= WireProtocol.maximumListPages, "a LIST of \(references.count) pages")
        self.source = source
        self.references = references
    }

    mutating func receive(into buffer: inout MutableRawSpan) throws(PageSourceError) {
        let pages = buffer.byteCount / PageSize.bytes
        var filled = 0
        do {
            while filled < pages {
                do throws(TransportError) {
                    let connection = try open()
                    if frameLeft == 0 {
                        frameLeft = try connection.beginPages()
                        frameRecord = 0
                    }
                    let count = min(frameLeft, pages - filled)
                    for index in 0..<count {
                        let expected = references[delivered + index].packed
                        guard connection.pageRecord(frameRecord + index).reference == expected else {
                            throw .malformed(peer: connection.peer, reason: "streamed page 0x\(String(connection.pageRecord(frameRecord + index).reference, radix: 16)) where 0x\(String(expected, radix: 16)) was due")
                        }
                    }
                    let record = frameRecord
                    try buffer.withBytes(in: filled * PageSize.bytes..<(filled + count) * PageSize.bytes) { (pages) throws(TransportError) in
                        try connection.readExactly(into: &pages)
                        try RemotePageSource.checkCRCs(pages.bytes, connection: connection, firstRecord: record)
                    }
                    filled += count
                    delivered += count
                    outage = nil
                    frameLeft -= count
                    frameRecord += count
                    source.countPages(count)
                } catch where error.isConnectionLoss {
                    if let connection { source.count(connection, before: before) }
                    let fresh = try source.connector.reconnect(after: error, background: true, outage: &outage)
                    try request(on: fresh)
                }
            }
        } catch {
            throw .remote("page server \(source.connector.endpoint): \(error)")
        }
        if delivered == references.count, let connection {
            source.giveBack(connection, before: before, background: true)
            self.connection = nil
        }
    }

    /// The stream's connection, asking for the list on first use.
    private mutating func open() throws(TransportError) -> FramedConnection {
        if let connection { return connection }
        let fresh = try source.take(background: true)
        try request(on: fresh)
        return fresh
    }

    /// Sends LIST for every page not yet delivered, on `fresh`, which becomes the stream's connection.
    private mutating func request(on fresh: FramedConnection) throws(TransportError) {
        connection = fresh
        frameLeft = 0
        before = (fresh.bytesReceived, fresh.bytesSent)
        var writer = ByteWriter()
        writer.u32(UInt32(references.count - delivered))
        for reference in references[delivered...] { writer.u64(reference.packed) }
        try fresh.sendFrame(.list, writer.bytes)
    }
}

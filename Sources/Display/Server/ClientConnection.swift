/// One viewer's connection, run on its own thread: the handshake, then client messages and
/// framebuffer updates until the viewer leaves or breaks the protocol.
///
/// The thread sleeps in poll on the socket and the session's wake event: a message is handled
/// as it arrives; a held incremental request is answered once the poller marks changed tiles.
final class ClientConnection {
    /// ClientCutText longer than this closes the connection; shorter text is read and dropped.
    static let maximumCutTextBytes = 1 << 20
    /// A buffered update is sent once it holds this many bytes, before the next rectangle.
    private static let sendChunkBytes = 1 << 20

    let stream: ViewerStream
    let session: ClientSession
    let server: VNCServer.Shared
    private let tracker: ChangeTracker
    private var converter = PixelConverter(format: .native)
    private var encoding = RFBEncoding.raw
    private var raw = RawEncoder()
    private var zrle: ZRLEEncoder?
    /// The incremental request held until something inside it changes.
    private var pendingArea: ScreenRectangle?
    private var output: [UInt8] = []
    /// What this viewer was sent, for the line logged when it leaves.
    private var sent = VNCStatistics()

    init(session: ClientSession, server: VNCServer.Shared, tracker: ChangeTracker) {
        self.session = session
        self.server = server
        self.tracker = tracker
        stream = ViewerStream(socket: session.socket, timeoutMilliseconds: server.ioTimeoutMilliseconds)
    }

    /// Serves the viewer until it leaves; logs why it went. The handshake must end within
    /// `handshakeMilliseconds`; then `admit` says whether the viewer may stay (the server may be
    /// full, or may have ended this handshake to make room for a newer one).
    func run(handshakeMilliseconds: Int, admit: () -> Bool) {
        server.record(VNCStatistics(connections: 1))
        do throws(DisplayError) {
            session.socket.setReceiveTimeout(milliseconds: handshakeMilliseconds)
            try handshake()
            session.socket.setReceiveTimeout(milliseconds: server.ioTimeoutMilliseconds)
            guard admit() else { return }
            try serve()
        } catch {
            let summary = "\(sent.updates) updates, \(sent.bytesSent) bytes"
            switch error {
            // A viewer that went away is no news, however it went.
            case .closed, .socket(_, _, .brokenPipe), .socket(_, _, .connectionReset):
                server.log("vnc: \(session.peer) disconnected (\(summary))")
            default:
                server.log("vnc: dropped: \(error) (\(summary))")
            }
        }
    }

    /// Sends `bytes` now, counting them.
    func send(_ bytes: [UInt8]) throws(DisplayError) {
        try stream.send(bytes)
        sent.bytesSent += bytes.count
        server.record(VNCStatistics(bytesSent: bytes.count))
    }

    private func serve() throws(DisplayError) {
        while true {
            if let area = pendingArea {
                let changes = tracker.takeChanges(for: session, within: area)
                if !changes.isEmpty {
                    pendingArea = nil
                    try sendUpdate(changes)
                }
            }
            if try stream.waitForInput(orWake: session.wake) { try handleMessage() }
        }
    }

    /// Reads and handles one client message (RFC 6143 §7.5).
    private func handleMessage() throws(DisplayError) {
        let type = try stream.readUInt8()
        switch type {
        case 0:  // SetPixelFormat
            try stream.skip(3)
            let format = PixelFormat(decoding: try stream.readBytes(PixelFormat.encodedBytes))
            if let reason = format.unsupportedReason { throw .protocolViolation(peer: session.peer, reason: "SetPixelFormat: \(reason)") }
            converter = PixelConverter(format: format)
        case 2:  // SetEncodings
            try stream.skip(1)
            let count = Int(try stream.readUInt16())
            var offered: [Int32] = []
            for _ in 0..<count { offered.append(Int32(bitPattern: try stream.readUInt32())) }
            // ZRLE when offered, whatever the order; pseudo-encodings and others are ignored.
            encoding = offered.contains(RFBEncoding.zrle.rawValue) ? .zrle : .raw
        case 3:  // FramebufferUpdateRequest
            let incremental = try stream.readUInt8() != 0
            let x = Int(try stream.readUInt16()), y = Int(try stream.readUInt16())
            let width = Int(try stream.readUInt16()), height = Int(try stream.readUInt16())
            let area = ScreenRectangle(x: x, y: y, width: width, height: height).intersection(server.grid.screen)
            if incremental {
                // An empty area can never change: holding it would keep the poller running for nothing.
                pendingArea = area.isEmpty ? nil : area
                if area.isEmpty { tracker.stopWaiting(session) }
            } else {
                // Answered now; an incremental request held before it stays held. Marked sent
                // before the pixels are read: a change the poller records while they are read and
                // sent stays due (marked after, it was cleared unsent and the tile stayed stale).
                tracker.markSent(area, to: session)
                try sendUpdate(TileSet(grid: server.grid, full: true).rectangles(within: area))
            }
        case 4:  // KeyEvent
            let down = try stream.readUInt8() != 0
            try stream.skip(2)
            server.keyEvent(try stream.readUInt32(), down)
            tracker.noteInput()
        case 5:  // PointerEvent: Engram has no pointer device.
            try stream.skip(5)
        case 6:  // ClientCutText: read and dropped.
            try stream.skip(3)
            let length = Int(try stream.readUInt32())
            guard length <= Self.maximumCutTextBytes else {
                throw .protocolViolation(peer: session.peer, reason: "ClientCutText of \(length) bytes (expected at most \(Self.maximumCutTextBytes))")
            }
            try stream.skip(length)
        default:
            throw .protocolViolation(peer: session.peer, reason: "unknown message type \(type)")
        }
    }

    /// Sends one FramebufferUpdate holding `rectangles` in the viewer's encoding and format.
    private func sendUpdate(_ rectangles: [ScreenRectangle]) throws(DisplayError) {
        output.removeAll(keepingCapacity: true)
        output += [0, 0]
        output.appendBigEndian(UInt16(rectangles.count))
        for area in rectangles {
            output.appendBigEndian(UInt16(area.x))
            output.appendBigEndian(UInt16(area.y))
            output.appendBigEndian(UInt16(area.width))
            output.appendBigEndian(UInt16(area.height))
            output.appendBigEndian(UInt32(bitPattern: encoding.rawValue))
            switch encoding {
            case .raw:
                raw.append(area, of: server.view, converter: converter, to: &output)
            case .zrle:
                if zrle == nil { zrle = try ZRLEEncoder() }
                try zrle?.append(area, of: server.view, converter: converter, to: &output)
            }
            if output.count >= Self.sendChunkBytes {
                try send(output)
                output.removeAll(keepingCapacity: true)
            }
        }
        if !output.isEmpty { try send(output) }
        sent.updates += 1
        server.record(VNCStatistics(updates: 1, rectangles: rectangles.count))
    }
}

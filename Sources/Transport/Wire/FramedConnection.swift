import LinuxSystem
import GuestMemory
import Paging

/// One connection of the page protocol: frames in and out over a TCP socket, through a receive
/// buffer so small fields cost no system call, and straight into the caller's memory for page
/// data. Used by one thread at a time (a pool hands it from thread to thread under a lock);
/// allocates only for control frames.
///
/// Frame: `u32 length` (of what follows), `u8 type`, payload. PAGES payload: `u32 count`, then
/// count records `{u64 page reference, u32 CRC32C}`, then count × 4096 bytes of page data.
package final class FramedConnection: @unchecked Sendable {
    package let socket: StreamSocket
    /// TLS over `socket`, or nil for plaintext; every byte goes through `stream`.
    package let tls: TLSSession?
    private let stream: any ByteStream
    /// Bytes received ahead of what was read: `receiveBuffer[start..<end]`.
    private var receiveBuffer: [UInt8]
    private var start = 0
    private var end = 0
    /// Page records of the PAGES frame being read; room for the most a frame may hold.
    private var records: [(reference: UInt64, crc: UInt32)]
    /// Where READ and PAGES frame headers are assembled, so sending them allocates nothing.
    private var scratch: [UInt8]
    package private(set) var bytesReceived: UInt64 = 0
    package private(set) var bytesSent: UInt64 = 0

    static let receiveBufferSize = 256 << 10

    package init(socket: StreamSocket, tls: TLSSession? = nil) {
        self.socket = socket
        self.tls = tls
        stream = tls ?? socket
        canSend = tls == nil
        receiveBuffer = [UInt8](repeating: 0, count: Self.receiveBufferSize)
        records = Array(repeating: (0, 0), count: WireProtocol.maximumFramePages)
        scratch = [UInt8](repeating: 0, count: 16 + WireProtocol.maximumFramePages * 12)
    }

    package var peer: String { socket.peer }

    /// False while a TLS connection has not finished its handshake: nothing may be sent yet
    /// (OpenSSL would start the handshake itself, with no time limit).
    private var canSend: Bool

    /// Runs the TLS handshake, if the connection uses TLS; within the socket's time limits.
    func startTLS() throws(TransportError) {
        guard let tls, !canSend else { return }
        do { try tls.handshake() } catch { throw TransportError(error) }
        canSend = true
    }

    // MARK: Receiving

    /// Refills the receive buffer (which the reader has used up) from the stream.
    private func refill() throws(TransportError) {
        do { end = try stream.receive(into: &receiveBuffer, at: 0, count: receiveBuffer.count) } catch { throw TransportError(error) }
        start = 0
        bytesReceived += UInt64(end)
    }

    /// Fills `destination` from the stream.
    package func readExactly(into destination: inout MutableRawSpan) throws(TransportError) {
        var filled = 0
        while filled < destination.byteCount {
            if start == end {
                // Large reads go straight to the destination; small ones refill the buffer.
                if destination.byteCount - filled >= Self.receiveBufferSize / 2 {
                    let got: Int
                    do {
                        got = try destination.withBytes(in: filled..<destination.byteCount) { (rest) throws(SystemError) in try stream.receive(into: &rest) }
                    } catch { throw TransportError(error) }
                    bytesReceived += UInt64(got)
                    filled += got
                    continue
                }
                try refill()
            }
            let count = min(end - start, destination.byteCount - filled)
            let buffered = receiveBuffer, from = start
            destination.withBytes(in: filled..<filled + count) { $0.copyBytes(from: buffered, range: from..<from + count) }
            start += count
            filled += count
        }
    }

    /// The next byte of the stream.
    private func readByte() throws(TransportError) -> UInt8 {
        if start == end { try refill() }
        defer { start += 1 }
        return receiveBuffer[start]
    }

    /// A little-endian integer from the stream.
    private func readInteger<T: FixedWidthInteger>(_: T.Type) throws(TransportError) -> T {
        var value = T.zero
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { value |= T(try readByte()) << shift }
        return value
    }

    /// The next frame's type and payload length; the length must be at most `maximumLength`.
    package func readFrameHeader(maximumLength: Int) throws(TransportError) -> (type: FrameType, length: Int) {
        let length = Int(try readInteger(UInt32.self))
        let rawType = try readInteger(UInt8.self)
        guard length >= 1 else { throw .malformed(peer: peer, reason: "a frame of length 0") }
        guard let type = FrameType(rawValue: rawType) else { throw .malformed(peer: peer, reason: "unknown frame type \(rawType)") }
        guard length - 1 <= maximumLength else {
            throw .malformed(peer: peer, reason: "a \(type) frame of \(length - 1) bytes; at most \(maximumLength) are allowed")
        }
        return (type, length - 1)
    }

    /// The next `count` bytes, as a control frame's payload.
    package func readPayload(_ count: Int) throws(TransportError) -> [UInt8] {
        guard count > 0 else { return [] }
        var payload = [UInt8](repeating: 0, count: count)
        try payload.withMutableBytes { (bytes) throws(TransportError) in try readExactly(into: &bytes) }
        return payload
    }

    /// Reads a whole frame of `expected` type (at most `maximumLength` bytes); an ERROR frame becomes `.refused`.
    package func readFrame(_ expected: FrameType, maximumLength: Int) throws(TransportError) -> [UInt8] {
        let header = try readFrameHeader(maximumLength: max(maximumLength, WireProtocol.maximumMessageLength + 8))
        let payload = try readPayload(header.length)
        if header.type == .error && expected != .error { throw .refused(peer: peer, message: Self.errorMessage(payload)) }
        guard header.type == expected else {
            throw .malformed(peer: peer, reason: "expected a \(expected) frame, got \(header.type)")
        }
        guard payload.count <= maximumLength else {
            throw .malformed(peer: peer, reason: "a \(expected) frame of \(payload.count) bytes; at most \(maximumLength) are allowed")
        }
        return payload
    }

    /// Starts reading a PAGES frame: reads its records and returns the page count; the data follows.
    package func beginPages() throws(TransportError) -> Int {
        let header = try readFrameHeader(maximumLength: 4 + WireProtocol.maximumFramePages * (12 + PageSize.bytes))
        if header.type == .error { throw .refused(peer: peer, message: Self.errorMessage(try readPayload(header.length))) }
        guard header.type == .pages else { throw .malformed(peer: peer, reason: "expected a pages frame, got \(header.type)") }
        let count = Int(try readInteger(UInt32.self))
        guard count >= 1, count <= WireProtocol.maximumFramePages, header.length == 4 + count * (12 + PageSize.bytes) else {
            throw .malformed(peer: peer, reason: "a pages frame of \(header.length) bytes claims \(count) pages")
        }
        for index in 0..<count { records[index] = (try readInteger(UInt64.self), try readInteger(UInt32.self)) }
        return count
    }

    /// Reads a PAGES frame's records once its header (`length` bytes of payload) has been read
    /// by `readFrameHeader`; returns the page count; the data follows.
    package func continuePages(length: Int) throws(TransportError) -> Int {
        let count = Int(try readInteger(UInt32.self))
        guard count >= 1, count <= WireProtocol.maximumFramePages, length == 4 + count * (12 + PageSize.bytes) else {
            throw .malformed(peer: peer, reason: "a pages frame of \(length) bytes claims \(count) pages")
        }
        for index in 0..<count { records[index] = (try readInteger(UInt64.self), try readInteger(UInt32.self)) }
        return count
    }

    /// The reference and CRC32C of record `index` of the current PAGES frame.
    package func pageRecord(_ index: Int) -> (reference: UInt64, crc: UInt32) { records[index] }

    // MARK: Sending

    /// Sends one frame with `payload`.
    package func sendFrame(_ type: FrameType, _ payload: [UInt8]) throws(TransportError) {
        var writer = ByteWriter()
        writer.u32(UInt32(payload.count + 1))
        writer.append([type.rawValue])
        writer.append(payload)
        do {
            try stream.send(writer.bytes)
            try stream.flush()
        } catch { throw TransportError(error) }
        bytesSent += UInt64(writer.bytes.count)
    }

    /// Sends an ERROR frame (the text cut to the protocol's limit); failures are ignored, as the connection ends next.
    package func sendError(_ message: String) {
        guard canSend else { return }
        let text = Array(message.utf8.prefix(WireProtocol.maximumMessageLength))
        try? sendFrame(.error, text)
    }

    /// Sends a READ for `run`, without allocating.
    package func sendRead(_ run: PageRun) throws(TransportError) {
        let length = 1 + 16
        scratch.withMutableBytes { raw in
            raw.storeBytes(of: UInt32(length).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: FrameType.read.rawValue, toByteOffset: 4, as: UInt8.self)
            raw.storeBytes(of: UInt32(run.region).littleEndian, toByteOffset: 5, as: UInt32.self)
            raw.storeBytes(of: run.firstPage.rawValue.littleEndian, toByteOffset: 9, as: UInt64.self)
            raw.storeBytes(of: UInt32(run.count).littleEndian, toByteOffset: 17, as: UInt32.self)
        }
        try sendScratch(4 + length, more: false)
        bytesSent += UInt64(4 + length)
    }

    /// Sends a PAGES frame: `references[i]` with `crcs[i]` and page i of `data`, without allocating.
    package func sendPages(references: Span<UInt64>, crcs: Span<UInt32>, data: RawSpan) throws(TransportError) {
        let count = references.count
        precondition(count >= 1 && count <= WireProtocol.maximumFramePages && crcs.count == count && data.byteCount == count * PageSize.bytes,
                     "a pages frame of \(count) pages")
        let headerLength = 4 + 1 + 4 + count * 12
        scratch.withMutableBytes { raw in
            raw.storeBytes(of: UInt32(1 + 4 + count * (12 + PageSize.bytes)).littleEndian, toByteOffset: 0, as: UInt32.self)
            raw.storeBytes(of: FrameType.pages.rawValue, toByteOffset: 4, as: UInt8.self)
            raw.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 5, as: UInt32.self)
            for index in 0..<count {
                raw.storeBytes(of: references[index].littleEndian, toByteOffset: 9 + index * 12, as: UInt64.self)
                raw.storeBytes(of: crcs[index].littleEndian, toByteOffset: 17 + index * 12, as: UInt32.self)
            }
        }
        try sendScratch(headerLength, more: true)
        do {
            try stream.send(data)
            try stream.flush()
        } catch { throw TransportError(error) }
        bytesSent += UInt64(headerLength + data.byteCount)
    }

    /// Sends the first `count` bytes of `scratch`; the message ends there unless `more` follows.
    private func sendScratch(_ count: Int, more: Bool) throws(TransportError) {
        do {
            try stream.send(scratch, count: count)
            if !more { try stream.flush() }
        } catch { throw TransportError(error) }
    }

    package static func errorMessage(_ payload: [UInt8]) -> String {
        String(decoding: payload.prefix(WireProtocol.maximumMessageLength), as: UTF8.self)
    }
}

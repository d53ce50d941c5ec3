/// A vsock device's connection table as a live update hands it to the new process: every open
/// connection's ports, phase, credit counters and the guest's bytes the host socket has not
/// taken yet; host clients still writing their `CONNECT` line; control packets and the
/// transport reset still owed to the guest. The host streams themselves travel as descriptors
/// named `conn.<guest port>.<host port>` and `handshake.<id>`.
///
/// Little-endian binary (the buffered bytes may reach 256 KiB a connection), version 1:
///
///     u32 version, u32 next host port, u8 transport reset owed
///     u32 connection count, each: u32 host port, u32 guest port, u16 flags (VsockHandoverState.Flag),
///         u32 peer buf_alloc, peer fwd_cnt, bytes sent, bytes received, fwd_cnt, fwd_cnt told,
///         u32 buffered length, the buffered bytes (guest to host, oldest first)
///     u32 scheduled count, each: u32 host port, u32 guest port (connections owed a packet, in turn order)
///     u32 handshake count, each: u32 id, u8 line length, the line read so far
///     u32 control packet count, each: the 44-byte header
///
/// Decoding checks every count and length before use and refuses trailing bytes.
struct VsockHandoverState: Equatable, Sendable {
    static let version: UInt32 = 1
    static let what = "vsock connection table"

    struct Connection: Equatable, Sendable {
        var key: VsockKey
        var flags: Flag
        var peerBufferAllocation: UInt32 = 0
        var peerForwardCount: UInt32 = 0
        var sentBytes: UInt32 = 0
        var receivedBytes: UInt32 = 0
        var forwarded: UInt32 = 0
        var advertisedForwardCount: UInt32 = 0
        /// Guest bytes waiting for the host socket, oldest first.
        var outbound: [UInt8] = []

        /// The descriptor name of its host stream.
        var descriptorName: String { "conn.\(key.peerPort).\(key.localPort)" }
    }

    /// A connection's phase and half-close state, as bits.
    struct Flag: OptionSet, Equatable, Sendable {
        let rawValue: UInt16
        static let hostInitiated = Flag(rawValue: 1 << 0)
        static let established = Flag(rawValue: 1 << 1)
        static let owesRequest = Flag(rawValue: 1 << 2)
        static let owesResponse = Flag(rawValue: 1 << 3)
        static let owesCreditUpdate = Flag(rawValue: 1 << 4)
        static let owesShutdown = Flag(rawValue: 1 << 5)
        static let hostReadable = Flag(rawValue: 1 << 6)
        static let hostEnded = Flag(rawValue: 1 << 7)
        static let guestStoppedReceiving = Flag(rawValue: 1 << 8)
        static let guestStoppedSending = Flag(rawValue: 1 << 9)
        static let hostWritingShut = Flag(rawValue: 1 << 10)
        static let known = Flag(rawValue: (1 << 11) - 1)
    }

    /// A host client that has not finished its `CONNECT <port>\n` line.
    struct Handshake: Equatable, Sendable {
        var id: UInt32
        var line: [UInt8]
        var descriptorName: String { "handshake.\(id)" }
    }

    var nextLocalPort: UInt32 = VirtioVsock.firstLocalPort
    var transportResetPending = false
    var connections: [Connection] = []
    var scheduled: [VsockKey] = []
    var handshakes: [Handshake] = []
    var control: [VsockHeader] = []

    init() {}

    func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + connections.reduce(0) { $0 + 48 + $1.outbound.count })
        func put<T: FixedWidthInteger>(_ value: T) {
            for index in 0..<MemoryLayout<T>.size { out.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        put(Self.version)
        put(nextLocalPort)
        put(UInt8(transportResetPending ? 1 : 0))
        put(UInt32(connections.count))
        for connection in connections {
            put(connection.key.localPort)
            put(connection.key.peerPort)
            put(connection.flags.rawValue)
            for value in [connection.peerBufferAllocation, connection.peerForwardCount, connection.sentBytes, connection.receivedBytes,
                          connection.forwarded, connection.advertisedForwardCount] { put(value) }
            put(UInt32(connection.outbound.count))
            out += connection.outbound
        }
        put(UInt32(scheduled.count))
        for key in scheduled { put(key.localPort); put(key.peerPort) }
        put(UInt32(handshakes.count))
        for handshake in handshakes {
            put(handshake.id)
            put(UInt8(handshake.line.count))
            out += handshake.line
        }
        put(UInt32(control.count))
        var header = [UInt8](repeating: 0, count: VsockHeader.size)
        for packet in control {
            packet.store(into: &header, at: 0)
            out += header
        }
        return out
    }

    /// Decodes and checks a table: the version, every count against the device's limits, every
    /// length against what is left, no connection twice, every scheduled one in the table.
    init(decoding bytes: [UInt8]) throws(VirtioHandoverError) {
        var reader = Reader(bytes: bytes)
        let version: UInt32 = try reader.read("the version")
        guard version == Self.version else {
            throw .malformed(what: Self.what, reason: "version \(version); this Engram reads version \(Self.version)")
        }
        nextLocalPort = try reader.read("the next host port")
        let reset: UInt8 = try reader.read("the transport reset flag")
        guard reset <= 1 else { throw .malformed(what: Self.what, reason: "transport reset flag \(reset); expected 0 or 1") }
        transportResetPending = reset == 1
        let connectionCount = try reader.count("the connection count", limit: VirtioVsock.connectionLimit)
        var keys: Set<VsockKey> = []
        for index in 0..<connectionCount {
            let place = "connection \(index)"
            var connection = Connection(
                key: VsockKey(localPort: try reader.read("\(place)'s host port"), peerPort: try reader.read("\(place)'s guest port")),
                flags: Flag(rawValue: try reader.read("\(place)'s flags")))
            guard Flag.known.isSuperset(of: connection.flags) else {
                throw .malformed(what: Self.what, reason: "\(place) has unknown flags 0x\(String(connection.flags.rawValue, radix: 16))")
            }
            guard keys.insert(connection.key).inserted else {
                throw .malformed(what: Self.what, reason: "\(place) repeats guest port \(connection.key.peerPort), host port \(connection.key.localPort)")
            }
            connection.peerBufferAllocation = try reader.read("\(place)'s peer buf_alloc")
            connection.peerForwardCount = try reader.read("\(place)'s peer fwd_cnt")
            connection.sentBytes = try reader.read("\(place)'s bytes sent")
            connection.receivedBytes = try reader.read("\(place)'s bytes received")
            connection.forwarded = try reader.read("\(place)'s fwd_cnt")
            connection.advertisedForwardCount = try reader.read("\(place)'s fwd_cnt told")
            let buffered = try reader.count("\(place)'s buffered length", limit: VirtioVsock.bufferAllocation)
            connection.outbound = try reader.bytes(buffered, "\(place)'s buffered bytes")
            connections.append(connection)
        }
        let scheduledCount = try reader.count("the scheduled count", limit: connectionCount)
        for index in 0..<scheduledCount {
            let key = VsockKey(localPort: try reader.read("scheduled \(index)'s host port"), peerPort: try reader.read("scheduled \(index)'s guest port"))
            guard keys.contains(key), !scheduled.contains(key) else {
                throw .malformed(what: Self.what, reason: "scheduled \(index) (guest port \(key.peerPort), host port \(key.localPort)) is not an open connection, or is there twice")
            }
            scheduled.append(key)
        }
        let handshakeCount = try reader.count("the handshake count", limit: VirtioVsock.connectionLimit)
        for index in 0..<handshakeCount {
            let id: UInt32 = try reader.read("handshake \(index)'s id")
            guard !handshakes.contains(where: { $0.id == id }) else { throw .malformed(what: Self.what, reason: "handshake id \(id) is there twice") }
            let length = try reader.count("handshake \(index)'s line length", limit: VsockHandshake.lineLimit, narrow: true)
            handshakes.append(Handshake(id: id, line: try reader.bytes(length, "handshake \(index)'s line")))
        }
        let controlCount = try reader.count("the control packet count", limit: VirtioVsock.controlBacklogLimit)
        for index in 0..<controlCount {
            control.append(VsockHeader(loading: try reader.bytes(VsockHeader.size, "control packet \(index)"), at: 0))
        }
        guard reader.offset == bytes.count else {
            throw .malformed(what: Self.what, reason: "\(bytes.count - reader.offset) bytes after its end")
        }
    }

    /// Bounds-checked little-endian reads that name the field that did not fit.
    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func read<T: FixedWidthInteger>(_ field: String) throws(VirtioHandoverError) -> T {
            let size = MemoryLayout<T>.size
            guard bytes.count - offset >= size else { throw truncated(field) }
            var value: T = 0
            for index in 0..<size { value |= T(bytes[offset + index]) << (8 * index) }
            offset += size
            return value
        }

        /// A count (u32; u8 with `narrow`), refused past `limit`.
        mutating func count(_ field: String, limit: Int, narrow: Bool = false) throws(VirtioHandoverError) -> Int {
            let value = narrow ? Int(try read(field) as UInt8) : Int(try read(field) as UInt32)
            guard value <= limit else { throw .malformed(what: VsockHandoverState.what, reason: "\(field) is \(value); at most \(limit)") }
            return value
        }

        mutating func bytes(_ count: Int, _ field: String) throws(VirtioHandoverError) -> [UInt8] {
            guard bytes.count - offset >= count else { throw truncated(field) }
            defer { offset += count }
            return Array(bytes[offset..<offset + count])
        }

        private func truncated(_ field: String) -> VirtioHandoverError {
            .malformed(what: VsockHandoverState.what, reason: "cut short at byte \(offset), in \(field)")
        }
    }
}

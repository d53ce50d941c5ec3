import LinuxSystem

/// A connection's two ports: Engram's (host side) and the guest's.
struct VsockKey: Hashable, Sendable {
    var localPort: UInt32
    var peerPort: UInt32
}

/// One stream between a guest port and a host Unix socket, with both directions' credit.
///
/// Host → guest: bytes are read from the host socket straight into a guest receive buffer, never
/// more than the guest's credit (`peerCredit`); while it has none, the socket is not read.
/// Guest → host: payload waits in `outbound` (sized to the credit Engram gives) until the host
/// socket takes it; `forwarded` is what the host took (the fwd_cnt the guest is told).
final class VsockConnection {
    let key: VsockKey
    let stream: NonBlockingStream
    /// Its epoll token.
    let token: UInt32
    /// Engram sent the REQUEST (a host client's CONNECT); it waits for the guest's RESPONSE.
    let hostInitiated: Bool
    var established: Bool

    /// Control packets owed to the guest.
    var owesRequest = false
    var owesResponse = false
    var owesCreditUpdate = false
    var owesShutdown = false

    /// The guest's credit for this connection, and payload bytes sent to it (wrapping, as fwd_cnt).
    var peerBufferAllocation: UInt32 = 0
    var peerForwardCount: UInt32 = 0
    var sentBytes: UInt32 = 0

    /// Guest payload received and handed to the host socket (wrapping); what fwd_cnt said last.
    var receivedBytes: UInt32 = 0
    var forwarded: UInt32 = 0
    var advertisedForwardCount: UInt32 = 0
    var outbound: VsockByteRing

    /// The host socket has input (or an end) the guest has not been sent.
    var hostReadable = false
    /// The host closed its sending side (end of input seen).
    var hostEnded = false
    /// The guest's SHUTDOWN flags: it will receive no more, send no more.
    var guestStoppedReceiving = false
    var guestStoppedSending = false
    var hostWritingShut = false
    /// In the device's list of connections with something for the guest.
    var scheduled = false
    /// What epoll watches now (nil: not registered).
    var watched: Epoll.Interest?

    init(key: VsockKey, stream: NonBlockingStream, token: UInt32, hostInitiated: Bool, bufferAllocation: Int) {
        self.key = key
        self.stream = stream
        self.token = token
        self.hostInitiated = hostInitiated
        established = !hostInitiated
        outbound = VsockByteRing(capacity: bufferAllocation)
    }

    /// Bytes the guest can take now: its buf_alloc less what is in flight (0 if it claims more consumed than sent).
    var peerCredit: Int {
        let inFlight = Int64(sentBytes &- peerForwardCount)
        return Int(max(0, Int64(peerBufferAllocation) - inFlight))
    }

    /// Whether host input can go to the guest now.
    var canSendData: Bool { established && hostReadable && !guestStoppedReceiving && peerCredit > 0 }

    /// Whether anything is owed to the guest now.
    var hasWork: Bool { owesRequest || owesResponse || owesCreditUpdate || owesShutdown || canSendData }

    /// What the host socket should be watched for: input while the guest can be told about it,
    /// output while guest bytes wait.
    var wantedInterest: Epoll.Interest {
        var interest: Epoll.Interest = []
        if established && !hostReadable && !hostEnded && !guestStoppedReceiving { interest.insert(.readable) }
        if !outbound.isEmpty { interest.insert(.writable) }
        return interest
    }
}

/// A host client that connected to the device's socket and has not finished its
/// `CONNECT <port>\n` line yet.
final class VsockHandshake {
    let stream: NonBlockingStream
    let token: UInt32
    var line: [UInt8] = []
    /// The longest line accepted ("CONNECT 4294967295" and a newline fit with room).
    static let lineLimit = 32

    init(stream: NonBlockingStream, token: UInt32) {
        self.stream = stream
        self.token = token
        line.reserveCapacity(Self.lineLimit)
    }

    /// The port of a complete `CONNECT <port>` line (without its newline); nil for anything else.
    static func port(of line: [UInt8]) -> UInt32? {
        let prefix = Array("CONNECT ".utf8)
        guard line.count > prefix.count, Array(line.prefix(prefix.count)) == prefix else { return nil }
        var digits = line.dropFirst(prefix.count)
        if digits.last == UInt8(ascii: "\r") { digits = digits.dropLast() }
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let value = digits.reduce(UInt64(0)) { $0 * 10 + UInt64($1 - 48) }
        return value <= UInt64(UInt32.max) ? UInt32(value) : nil
    }
}

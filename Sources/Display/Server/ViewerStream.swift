import LinuxSystem

/// A viewer's connection, read through a small buffer (pointer events come in bursts of tiny
/// messages) and written whole. Blocking, with timeouts: a read of a message's rest or a write
/// that makes no progress for `timeoutMilliseconds` fails, so a stuck viewer cannot hold its
/// thread forever. Used by one thread.
final class ViewerStream {
    let socket: StreamSocket
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var start = 0
    private var end = 0

    init(socket: StreamSocket, timeoutMilliseconds: Int) {
        self.socket = socket
        socket.setReceiveTimeout(milliseconds: timeoutMilliseconds)
        socket.setSendTimeout(milliseconds: timeoutMilliseconds)
        // An idle viewer whose host vanished is noticed after about two minutes, not two hours.
        socket.setKeepAlive(idleSeconds: 60)
    }

    var peer: String { socket.peer }

    /// True when bytes already read wait in the buffer.
    var hasBufferedInput: Bool { end > start }

    /// Sleeps until the socket has input (true) or `wake` is signalled (false, after draining it).
    func waitForInput(orWake wake: EventNotifier) throws(DisplayError) -> Bool {
        if hasBufferedInput { return true }
        do { return try socket.waitForInput(orWake: wake) } catch { throw DisplayError(error) }
    }

    func readUInt8() throws(DisplayError) -> UInt8 {
        try fill(1)
        start += 1
        return buffer[start - 1]
    }

    func readUInt16() throws(DisplayError) -> UInt16 {
        try fill(2)
        start += 2
        return UInt16(buffer[start - 2]) << 8 | UInt16(buffer[start - 1])
    }

    func readUInt32() throws(DisplayError) -> UInt32 {
        try fill(4)
        start += 4
        return buffer[(start - 4)..<start].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Reads exactly `count` bytes (at most the buffer's size).
    func readBytes(_ count: Int) throws(DisplayError) -> [UInt8] {
        try fill(count)
        start += count
        return Array(buffer[(start - count)..<start])
    }

    /// Reads and drops `count` bytes.
    func skip(_ count: Int) throws(DisplayError) {
        var left = count
        while left > 0 {
            let chunk = min(left, buffer.count)
            try fill(chunk)
            start += chunk
            left -= chunk
        }
    }

    /// Makes `count` bytes available from `start`, reading as needed.
    private func fill(_ count: Int) throws(DisplayError) {
        precondition(count <= buffer.count, "a read of \(count) bytes exceeds the receive buffer")
        if end - start >= count { return }
        if start > 0 {
            buffer.replaceSubrange(0..<(end - start), with: buffer[start..<end])
            end -= start
            start = 0
        }
        while end < count {
            do { end += try socket.receive(into: &buffer, at: end, count: buffer.count - end) } catch { throw DisplayError(error) }
        }
    }

    /// Sends every byte of `bytes`.
    func send(_ bytes: [UInt8]) throws(DisplayError) {
        do { try socket.send(bytes) } catch { throw DisplayError(error) }
    }
}

import Glibc
import GuestMemory
import SystemPackage

/// A viewer's connected socket, read through a small buffer (pointer events come in bursts of
/// tiny messages) and written whole. Blocking, with timeouts: a read of a message's rest or a
/// write that makes no progress for `timeoutMilliseconds` fails, so a stuck viewer cannot hold
/// its thread forever. Writes never raise SIGPIPE. Used by one thread.
final class SocketStream {
    let descriptor: OwnedFileDescriptor
    let peer: String
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var start = 0
    private var end = 0

    init(descriptor: OwnedFileDescriptor, peer: String, timeoutMilliseconds: Int) {
        self.descriptor = descriptor
        self.peer = peer
        let fd = descriptor.rawValue
        var timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        // SAFETY: setsockopt reads one timeval from a local.
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // SAFETY: as above.
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: CInt = 1
        // Updates go out as soon as they are written; a key press's echo should not wait.
        // SAFETY: setsockopt reads one CInt from a local.
        _ = unsafe setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        // An idle viewer whose host vanished is noticed after about two minutes, not two hours.
        // SAFETY: as above.
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<CInt>.size))
        for (option, value) in [(TCP_KEEPIDLE, CInt(60)), (TCP_KEEPINTVL, 10), (TCP_KEEPCNT, 6)] {
            var setting = value
            // SAFETY: as above.
            _ = unsafe setsockopt(fd, CInt(IPPROTO_TCP), option, &setting, socklen_t(MemoryLayout<CInt>.size))
        }
    }

    /// True when bytes already read wait in the buffer.
    var hasBufferedInput: Bool { end > start }

    /// Sleeps until the socket has input (true) or `wake` is signalled (false, after draining it).
    func waitForInput(orWake wake: WakeEvent) throws(DisplayError) -> Bool {
        if hasBufferedInput { return true }
        var entries = [pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: wake.rawValue, events: Int16(POLLIN), revents: 0)]
        while true {
            // SAFETY: poll reads and writes the two local entries.
            let ready = unsafe poll(&entries, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw .socket(peer: peer, call: "poll", Errno(rawValue: errno))
            }
            if entries[1].revents != 0 { wake.drain() }
            // Hang-ups and errors count as input: the read that follows reports them.
            return entries[0].revents != 0
        }
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
            let received = unsafe buffer.withUnsafeMutableBytes { space in
                // SAFETY: recv writes at most the free space left after `end`.
                unsafe recv(descriptor.rawValue, space.baseAddress! + end, space.count - end, 0)
            }
            if received > 0 {
                end += received
                continue
            }
            if received == 0 { throw .closed(peer: peer) }
            if errno == EINTR { continue }
            if errno == EAGAIN { throw .socket(peer: peer, call: "recv", .timedOut) }
            throw .socket(peer: peer, call: "recv", Errno(rawValue: errno))
        }
    }

    /// Sends every byte of `bytes`.
    func send(_ bytes: [UInt8]) throws(DisplayError) {
        var offset = 0
        while offset < bytes.count {
            let sent = unsafe bytes.withUnsafeBytes { raw in
                // SAFETY: the slice from `offset` lies inside the array.
                unsafe Glibc.send(descriptor.rawValue, raw.baseAddress! + offset, raw.count - offset, CInt(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw .socket(peer: peer, call: "send", .timedOut) }
                throw .socket(peer: peer, call: "send", Errno(rawValue: errno))
            }
            offset += sent
        }
    }

    /// Ends both directions now: a thread blocked in poll, recv or send on it returns.
    func shutdown() { _ = Glibc.shutdown(descriptor.rawValue, CInt(SHUT_RDWR)) }
}

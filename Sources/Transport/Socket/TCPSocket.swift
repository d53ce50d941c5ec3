import CLinux
import Glibc
import GuestMemory
import SystemPackage

/// A connected, blocking TCP socket this process owns (closed on deinit). Writes never raise
/// SIGPIPE; Nagle is off, since a fault's request must leave at once.
package final class TCPSocket: Sendable {
    private let descriptor: OwnedFileDescriptor
    /// The other end, for messages.
    package let peer: String

    init(taking fd: CInt, peer: String) {
        descriptor = OwnedFileDescriptor(taking: fd)
        self.peer = peer
        var one: CInt = 1
        // SAFETY: setsockopt reads one CInt from a local.
        _ = unsafe setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        // SAFETY: as above.
        _ = unsafe setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<CInt>.size))
    }

    /// Connects to `endpoint`, giving up after `timeoutMilliseconds`.
    package static func connect(to endpoint: Endpoint, timeoutMilliseconds: Int32) throws(TransportError) -> TCPSocket {
        // SAFETY: the closure only passes getaddrinfo's address on to connect.
        try unsafe endpoint.withResolvedAddresses(passive: false) { (family, address, length) throws(TransportError) -> TCPSocket? in
            let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw .socket(peer: endpoint.description, call: "socket", Errno(rawValue: errno)) }
            let socket = TCPSocket(taking: fd, peer: endpoint.description)
            // SAFETY: the address comes from getaddrinfo with its length.
            if unsafe Glibc.connect(fd, address, length) != 0 {
                guard errno == EINPROGRESS else { throw .socket(peer: endpoint.description, call: "connect", Errno(rawValue: errno)) }
                var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                // SAFETY: one pollfd, a local.
                guard unsafe poll(&entry, 1, timeoutMilliseconds) == 1 else {
                    throw .socket(peer: endpoint.description, call: "connect", .timedOut)
                }
                var failure: CInt = 0
                var size = socklen_t(MemoryLayout<CInt>.size)
                // SAFETY: getsockopt writes one CInt into a local.
                _ = unsafe getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size)
                guard failure == 0 else { throw .socket(peer: endpoint.description, call: "connect", Errno(rawValue: failure)) }
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return socket
        }
    }

    package var rawValue: CInt { descriptor.rawValue }

    /// Sends every byte of `bytes`.
    package func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: the slice from `offset` lies inside `bytes`.
            let sent = unsafe Glibc.send(rawValue, bytes.baseAddress! + offset, bytes.count - offset, CInt(MSG_NOSIGNAL))
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { throw .socket(peer: peer, call: "send", .timedOut) }
                throw .socket(peer: peer, call: "send", Errno(rawValue: errno))
            }
            offset += sent
        }
    }

    /// Sends `bytes`.
    package func send(_ bytes: [UInt8]) throws(TransportError) {
        // SAFETY: the view of the array is used only for the send.
        let result: Result<Void, TransportError> = unsafe bytes.withUnsafeBytes { raw in
            do throws(TransportError) {
                try unsafe send(raw)
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Receives up to `buffer.count` bytes; at least one (the peer closing is an error).
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        while true {
            // SAFETY: recv writes at most buffer.count bytes into it.
            let received = unsafe recv(rawValue, buffer.baseAddress, buffer.count, 0)
            if received > 0 { return received }
            if received == 0 { throw .closed(peer: peer) }
            if errno == EINTR { continue }
            if errno == EAGAIN { throw .socket(peer: peer, call: "recv", .timedOut) }
            throw .socket(peer: peer, call: "recv", Errno(rawValue: errno))
        }
    }

    /// A receive that waits at most `milliseconds` (0: forever) before failing with ETIMEDOUT.
    package func setReceiveTimeout(milliseconds: Int) {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        // SAFETY: setsockopt reads one timeval from a local.
        _ = unsafe setsockopt(rawValue, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A send that cannot progress for `milliseconds` fails with ETIMEDOUT, and so does the
    /// connection once sent data stays unacknowledged that long (TCP_USER_TIMEOUT): a peer
    /// behind a cut link is noticed instead of waited for through TCP's 15-minute retries.
    package func setSendTimeout(milliseconds: Int) {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        // SAFETY: setsockopt reads one timeval from a local.
        _ = unsafe setsockopt(rawValue, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        var userTimeout = UInt32(milliseconds)
        // SAFETY: setsockopt reads one unsigned int from a local (TCP_USER_TIMEOUT is 18 in <linux/tcp.h>).
        _ = unsafe setsockopt(rawValue, CInt(IPPROTO_TCP), 18, &userTimeout, socklen_t(MemoryLayout<UInt32>.size))
    }

    /// Ends both directions now (a thread blocked in recv returns).
    package func shutdown() { _ = Glibc.shutdown(rawValue, CInt(SHUT_RDWR)) }
}

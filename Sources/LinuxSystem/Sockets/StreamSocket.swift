import CLinux
import Glibc
import SystemPackage

/// A connected, blocking stream socket this process owns (TCP or Unix), closed on deinit.
/// Writes never raise SIGPIPE. TCP connections have Nagle off (a fault's request or a key's
/// echo must leave at once) and keep-alive on.
package final class StreamSocket: ByteStream {
    private let descriptor: OwnedFileDescriptor
    /// The other end, for messages.
    package let peer: String

    /// Owns an already connected socket.
    package init(taking descriptor: OwnedFileDescriptor, peer: String) {
        self.descriptor = descriptor
        self.peer = peer
        var family = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // SAFETY: getsockname writes at most `length` bytes into the local storage.
        _ = unsafe withUnsafeMutablePointer(to: &family) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor.rawValue, $0, &length) }
        }
        if CInt(family.ss_family) == AF_INET || CInt(family.ss_family) == AF_INET6 {
            SocketOptions.set(descriptor.rawValue, CInt(IPPROTO_TCP), TCP_NODELAY, 1)
            SocketOptions.set(descriptor.rawValue, SOL_SOCKET, SO_KEEPALIVE, 1)
        }
    }

    /// Connects to `endpoint`, giving up after `timeoutMilliseconds`.
    package static func connect(to endpoint: Endpoint, timeoutMilliseconds: Int32) throws(SystemError) -> StreamSocket {
        let name = endpoint.description
        // SAFETY: the closure only passes getaddrinfo's address on to connect.
        return try unsafe endpoint.withResolvedAddresses(passive: false) { (family, address, length) throws(SystemError) -> StreamSocket in
            let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
            guard fd >= 0 else { throw .failed("socket", on: name, Errno(rawValue: errno)) }
            let owned = OwnedFileDescriptor(taking: fd)
            // SAFETY: the address comes from getaddrinfo with its length.
            if unsafe Glibc.connect(fd, address, length) != 0 {
                guard errno == EINPROGRESS else { throw .failed("connect", on: name, Errno(rawValue: errno)) }
                var entries = [pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)]
                let ready: Int
                do throws(SystemError) { ready = try Poll.wait(&entries, milliseconds: timeoutMilliseconds) } catch {
                    throw .failed("connect", on: name, error.errno)
                }
                guard ready == 1 else { throw .failed("connect", on: name, .timedOut) }
                var failure: CInt = 0
                var size = socklen_t(MemoryLayout<CInt>.size)
                // SAFETY: getsockopt writes one CInt into a local.
                _ = unsafe getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size)
                guard failure == 0 else { throw .failed("connect", on: name, Errno(rawValue: failure)) }
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return StreamSocket(taking: owned, peer: name)
        }
    }

    /// Connects to the Unix socket at `path`.
    package static func connect(unixPath path: String) throws(SystemError) -> StreamSocket {
        // SAFETY: the path is copied into the socket address during the call.
        let fd = unsafe clinux_unix_socket_connect(path)
        guard fd >= 0 else { throw .failed("connect", on: path, Errno(rawValue: errno)) }
        return StreamSocket(taking: OwnedFileDescriptor(taking: fd), peer: path)
    }

    /// Two connected Unix stream sockets (close-on-exec), both named `peer` in messages.
    package static func pair(peer: String) throws(SystemError) -> (StreamSocket, StreamSocket) {
        var ends: [CInt] = [-1, -1]
        // SAFETY: socketpair writes two descriptors into the two-element array.
        guard unsafe clinux_stream_socketpair(&ends) == 0 else { throw .last("socketpair", on: peer) }
        return (StreamSocket(taking: OwnedFileDescriptor(taking: ends[0]), peer: peer), StreamSocket(taking: OwnedFileDescriptor(taking: ends[1]), peer: peer))
    }

    /// The descriptor, for poll(2) and for keeping across exec.
    package var rawValue: CInt { descriptor.rawValue }

    /// Sends every byte of `bytes`.
    package func send(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: the slice from `offset` lies inside `bytes`.
            let sent = unsafe Glibc.send(rawValue, bytes.baseAddress! + offset, bytes.count - offset, CInt(MSG_NOSIGNAL))
            if sent < 0 {
                if errno == EINTR { continue }
                throw .failed("send", on: peer, errno == EAGAIN ? .timedOut : Errno(rawValue: errno))
            }
            offset += sent
        }
    }

    /// Receives up to `buffer.count` bytes; at least one (the peer closing is `.closed`).
    package func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int {
        while true {
            // SAFETY: recv writes at most buffer.count bytes into it.
            let received = unsafe recv(rawValue, buffer.baseAddress, buffer.count, 0)
            if received > 0 { return received }
            if received == 0 { throw .closed(peer: peer) }
            if errno == EINTR { continue }
            throw .failed("recv", on: peer, errno == EAGAIN ? .timedOut : Errno(rawValue: errno))
        }
    }

    /// Nothing to do: a socket's sends go out as they are made.
    package func flush() throws(SystemError) {}

    /// Waits until the socket has input (true) or `wake` is signalled (false, after draining it).
    /// Hang-ups and errors count as input: the read that follows reports them.
    package func waitForInput(orWake wake: EventNotifier) throws(SystemError) -> Bool {
        var entries = [Poll.input(rawValue), Poll.input(wake.rawValue)]
        do throws(SystemError) { _ = try Poll.wait(&entries, milliseconds: -1) } catch { throw .failed("poll", on: peer, error.errno) }
        if entries[1].revents != 0 { wake.drain() }
        return entries[0].revents != 0
    }

    /// A receive that waits at most `milliseconds` (0: forever) before failing with ETIMEDOUT.
    package func setReceiveTimeout(milliseconds: Int) { SocketOptions.set(rawValue, SOL_SOCKET, SO_RCVTIMEO, milliseconds: milliseconds) }

    /// A send that cannot progress for `milliseconds` fails with ETIMEDOUT, and so does the
    /// connection once sent data stays unacknowledged that long (TCP_USER_TIMEOUT): a peer
    /// behind a cut link is noticed instead of waited for through TCP's 15-minute retries.
    package func setSendTimeout(milliseconds: Int) {
        SocketOptions.set(rawValue, SOL_SOCKET, SO_SNDTIMEO, milliseconds: milliseconds)
        SocketOptions.set(rawValue, CInt(IPPROTO_TCP), 18 /* TCP_USER_TIMEOUT */, CInt(clamping: milliseconds))
    }

    /// An idle peer whose host vanished is noticed after `idleSeconds` plus six probes ten
    /// seconds apart, not after TCP's two hours.
    package func setKeepAlive(idleSeconds: CInt) {
        SocketOptions.set(rawValue, CInt(IPPROTO_TCP), TCP_KEEPIDLE, idleSeconds)
        SocketOptions.set(rawValue, CInt(IPPROTO_TCP), TCP_KEEPINTVL, 10)
        SocketOptions.set(rawValue, CInt(IPPROTO_TCP), TCP_KEEPCNT, 6)
    }

    /// Ends both directions now: a thread blocked in poll, recv or send on it returns.
    package func shutdown() { _ = Glibc.shutdown(rawValue, CInt(SHUT_RDWR)) }

    /// Ends this side's sending (the peer reads end of file once it has read the rest); replies still arrive.
    package func shutdownSending() { _ = Glibc.shutdown(rawValue, CInt(SHUT_WR)) }
}

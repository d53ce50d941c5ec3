import CLinux
import Glibc
import SystemPackage

/// A TCP socket listening on an endpoint; hands out accepted connections, close-on-exec.
package final class ListeningSocket: Sendable {
    private let descriptor: OwnedFileDescriptor
    /// The address as asked for, for messages.
    package let endpoint: Endpoint

    /// Binds `endpoint` (port 0: any free port) with address reuse on, so a restarted server
    /// gets its port back at once, and listens.
    package init(endpoint: Endpoint, backlog: CInt = 128) throws(SystemError) {
        self.endpoint = endpoint
        let name = endpoint.description
        // SAFETY: the closure only passes getaddrinfo's address on to bind.
        descriptor = try unsafe endpoint.withResolvedAddresses(passive: true) { (family, address, length) throws(SystemError) -> OwnedFileDescriptor in
            let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .failed("socket", on: name, Errno(rawValue: errno)) }
            let owned = OwnedFileDescriptor(taking: fd)
            SocketOptions.set(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            // SAFETY: the address comes from getaddrinfo with its length.
            guard unsafe bind(fd, address, length) == 0 else {
                throw errno == EADDRINUSE ? .addressInUse(name) : .failed("bind", on: name, Errno(rawValue: errno))
            }
            guard listen(fd, backlog) == 0 else {
                throw errno == EADDRINUSE ? .addressInUse(name) : .failed("listen", on: name, Errno(rawValue: errno))
            }
            return owned
        }
    }

    /// The port bound (the one asked for, or the kernel's choice for port 0).
    package var boundPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // SAFETY: getsockname writes at most `length` bytes into the local storage.
        _ = unsafe withUnsafeMutablePointer(to: &storage) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor.rawValue, $0, &length) }
        }
        // sin_port and sin6_port both sit at offset 2, in network byte order.
        return UInt16(bigEndian: unsafe withUnsafeBytes(of: storage) { unsafe $0.load(fromByteOffset: 2, as: UInt16.self) })
    }

    /// Waits for the next connection. Network errors of the connection being accepted (which
    /// Linux passes through accept) and a shortage of descriptors or memory (which passes) do
    /// not end the server. Throws once `shutdown` was called.
    package func accept() throws(SystemError) -> StreamSocket {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            // SAFETY: accept4 writes at most `length` bytes of address into the local storage.
            let fd = unsafe withUnsafeMutablePointer(to: &storage) { unsafe clinux_accept_cloexec(descriptor.rawValue, $0, &length) }
            if fd >= 0 {
                return StreamSocket(taking: OwnedFileDescriptor(taking: fd), peer: Endpoint.describe(storage) ?? "a client")
            }
            switch errno {
            case EINTR, ECONNABORTED, ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, ETIMEDOUT:
                continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                usleep(100_000)
            default:
                throw .failed("accept", on: endpoint.description, Errno(rawValue: errno))
            }
        }
    }

    /// Waits at most `milliseconds` for a connection to accept; true if one waits.
    package func hasConnection(withinMilliseconds milliseconds: CInt) -> Bool {
        Poll.isReadable(descriptor.rawValue, milliseconds: milliseconds)
    }

    /// Stops listening: a thread blocked in `accept` wakes (EINVAL) and later connections are
    /// refused. (Closing would not wake it on Linux, and would let the number be reused under
    /// it; the descriptor closes when this object goes.)
    package func shutdown() { _ = Glibc.shutdown(descriptor.rawValue, CInt(SHUT_RDWR)) }
}

/// setsockopt(2) with plain values.
enum SocketOptions {
    static func set(_ fd: CInt, _ level: CInt, _ option: CInt, _ value: CInt) {
        var setting = value
        // SAFETY: setsockopt reads one CInt from a local.
        _ = unsafe setsockopt(fd, level, option, &setting, socklen_t(MemoryLayout<CInt>.size))
    }

    static func set(_ fd: CInt, _ level: CInt, _ option: CInt, milliseconds: Int) {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        // SAFETY: setsockopt reads one timeval from a local.
        _ = unsafe setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }
}

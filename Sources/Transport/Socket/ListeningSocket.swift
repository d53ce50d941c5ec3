import Glibc
import GuestMemory
import SystemPackage

/// A TCP socket listening on an endpoint; hands out accepted connections.
package final class ListeningSocket: Sendable {
    private let descriptor: OwnedFileDescriptor
    package let endpoint: Endpoint

    /// Binds `endpoint` (address reuse on, so a restarted server gets its port back at once) and listens.
    package init(endpoint: Endpoint, backlog: CInt = 128) throws(TransportError) {
        self.endpoint = endpoint
        // SAFETY: the closure only passes getaddrinfo's address on to bind.
        descriptor = try unsafe endpoint.withResolvedAddresses(passive: true) { (family, address, length) throws(TransportError) -> OwnedFileDescriptor? in
            let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw .socket(peer: endpoint.description, call: "socket", Errno(rawValue: errno)) }
            let owned = OwnedFileDescriptor(taking: fd)
            var one: CInt = 1
            // SAFETY: setsockopt reads one CInt from a local.
            _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
            // SAFETY: the address comes from getaddrinfo with its length.
            guard unsafe bind(fd, address, length) == 0 else {
                throw .socket(peer: endpoint.description, call: "bind", Errno(rawValue: errno))
            }
            guard listen(fd, backlog) == 0 else { throw .socket(peer: endpoint.description, call: "listen", Errno(rawValue: errno)) }
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
        return UInt16(bigEndian: unsafe withUnsafeBytes(of: storage) { unsafe $0.load(fromByteOffset: 2, as: UInt16.self) })
    }

    /// Waits for the next connection.
    package func accept() throws(TransportError) -> TCPSocket {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            // SAFETY: accept4 writes at most `length` bytes of address into the local storage.
            let fd = unsafe withUnsafeMutablePointer(to: &storage) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    unsafe Glibc.accept(descriptor.rawValue, $0, &length)
                }
            }
            if fd < 0 {
                // Network errors of the connection being accepted are passed through accept(2) on
                // Linux, and descriptor or memory shortage passes: none ends the server.
                if [EINTR, ECONNABORTED, ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, ETIMEDOUT]
                    .contains(errno) { continue }
                if [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(errno) {
                    usleep(100_000)
                    continue
                }
                throw .socket(peer: endpoint.description, call: "accept", Errno(rawValue: errno))
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return TCPSocket(taking: fd, peer: Self.describe(storage))
        }
    }

    /// Stops listening: a thread blocked in `accept` wakes with EINVAL, later connections are
    /// refused. (Closing the descriptor would not wake it on Linux, and would let the number be
    /// reused under it; the descriptor is closed when this object goes.)
    package func shutdown() { _ = Glibc.shutdown(descriptor.rawValue, CInt(SHUT_RDWR)) }

    /// "ADDRESS:PORT" of a peer.
    private static func describe(_ storage: sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        var copy = storage
        let size = socklen_t(storage.ss_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        // SAFETY: getnameinfo reads the address and writes NUL-terminated strings into the two local arrays.
        let status = unsafe withUnsafePointer(to: &copy) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe getnameinfo($0, size, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return "a client" }
        let text = { (chars: [CChar]) in String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return text(host) + ":" + text(service)
    }
}

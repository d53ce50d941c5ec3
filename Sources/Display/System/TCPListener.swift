import Glibc
import GuestMemory
import SystemPackage

/// A TCP socket listening on HOST:PORT for viewers.
@safe
final class TCPListener: Sendable {
    private let descriptor: OwnedFileDescriptor
    /// HOST:PORT as asked for (IPv6 hosts in brackets), for messages.
    let address: String

    /// Binds `host` (an IPv4 or IPv6 address, or a name) and `port` (0: any free port) with
    /// address reuse on, so a restarted server gets its port back at once, and listens.
    init(host: String, port: UInt16) throws(DisplayError) {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        self.address = address
        // SAFETY: a zeroed addrinfo is the documented empty hint; only plain fields are set.
        var hints = unsafe addrinfo()
        unsafe hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        unsafe hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        // SAFETY: getaddrinfo fills `list`, freed below with freeaddrinfo.
        let status = unsafe getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            // SAFETY: gai_strerror returns a static string.
            throw .address(address, reason: unsafe String(validatingCString: gai_strerror(status)) ?? "error \(status)")
        }
        defer { unsafe freeaddrinfo(list) }
        var failure = DisplayError.address(address, reason: "it resolves to no address")
        var entry = unsafe list
        while let current = unsafe entry {
            unsafe entry = unsafe current.pointee.ai_next
            // SAFETY: getaddrinfo's entries are valid until freeaddrinfo.
            let fd = unsafe socket(current.pointee.ai_family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                failure = .socket(peer: address, call: "socket", Errno(rawValue: errno))
                continue
            }
            let owned = OwnedFileDescriptor(taking: fd)
            var one: CInt = 1
            // SAFETY: setsockopt reads one CInt from a local.
            _ = unsafe setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size))
            // SAFETY: the address and its length come from getaddrinfo.
            guard unsafe bind(fd, current.pointee.ai_addr, current.pointee.ai_addrlen) == 0 else {
                failure = errno == EADDRINUSE ? .addressInUse(address) : .socket(peer: address, call: "bind", Errno(rawValue: errno))
                continue
            }
            guard listen(fd, 16) == 0 else {
                failure = errno == EADDRINUSE ? .addressInUse(address) : .socket(peer: address, call: "listen", Errno(rawValue: errno))
                continue
            }
            descriptor = owned
            return
        }
        throw failure
    }

    /// The port bound (the one asked for, or the kernel's choice for port 0).
    var boundPort: UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        // SAFETY: getsockname writes at most `length` bytes into the local storage.
        _ = unsafe withUnsafeMutablePointer(to: &storage) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe getsockname(descriptor.rawValue, $0, &length) }
        }
        // sin_port and sin6_port both sit at offset 2, in network byte order.
        return UInt16(bigEndian: unsafe withUnsafeBytes(of: storage) { unsafe $0.load(fromByteOffset: 2, as: UInt16.self) })
    }

    /// Waits for the next viewer: its socket and "ADDRESS:PORT". Nil once `shutdown` was called.
    func accept() -> (OwnedFileDescriptor, String)? {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            // SAFETY: accept writes at most `length` bytes of address into the local storage.
            let fd = unsafe withUnsafeMutablePointer(to: &storage) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe Glibc.accept(descriptor.rawValue, $0, &length) }
            }
            if fd >= 0 {
                // accept4 (atomic close-on-exec) is a GNU extension Swift does not see; nothing
                // in this process execs while a viewer connects.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return (OwnedFileDescriptor(taking: fd), Self.describe(storage))
            }
            switch errno {
            // The accepted connection's own network errors surface here on Linux: none ends the server.
            case EINTR, ECONNABORTED, ENETDOWN, EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, ETIMEDOUT:
                continue
            // Out of descriptors or memory: wait for some to be released.
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                usleep(100_000)
            default:
                return nil
            }
        }
    }

    /// Stops listening: a thread blocked in `accept` wakes (EINVAL) and gets nil. (Closing
    /// would not wake it on Linux; the descriptor closes when this object goes.)
    func shutdown() { _ = Glibc.shutdown(descriptor.rawValue, CInt(SHUT_RDWR)) }

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
        guard status == 0 else { return "a viewer" }
        let text = { (chars: [CChar]) in String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        let address = text(host)
        return address.contains(":") ? "[\(address)]:\(text(service))" : "\(address):\(text(service))"
    }
}

import Glibc

/// A TCP address given as HOST:PORT (`[v6]:PORT` for IPv6), resolved with getaddrinfo.
package struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    package let host: String
    package let port: UInt16

    package init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `text`; the host may be a name, an IPv4 address or a bracketed IPv6 address. Port
    /// 0 (any free port) only for an address to listen on.
    package init(parsing text: String, listening: Bool = false) throws(SystemError) {
        guard let colon = text.lastIndex(of: ":") else { throw .address(text, reason: "no port") }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw .address(text, reason: "no host") }
        guard let port = UInt16(text[text.index(after: colon)...]), port > 0 || listening else {
            throw .address(text, reason: listening ? "the port is not a number from 0 to 65535" : "the port is not a number from 1 to 65535")
        }
        self.host = host
        self.port = port
    }

    /// HOST:PORT, with an IPv6 host in brackets.
    package var description: String { Self.describe(host: host, port: port) }

    /// HOST:PORT, with an IPv6 host in brackets.
    package static func describe(host: String, port: UInt16) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Tries `body` on each address `host` resolves to; the first that returns a value wins,
    /// otherwise the last error is thrown.
    func withResolvedAddresses<T>(
        passive: Bool, _ body: (CInt, UnsafePointer<sockaddr>, socklen_t) throws(SystemError) -> T
    ) throws(SystemError) -> T {
        // SAFETY: a zeroed addrinfo is the documented empty hint; only plain fields are set.
        var hints = unsafe addrinfo()
        unsafe hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        unsafe hints.ai_flags = (passive ? AI_PASSIVE : 0) | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        // SAFETY: getaddrinfo fills `list`, freed below with freeaddrinfo.
        let status = unsafe getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            // SAFETY: gai_strerror returns a static string.
            throw .address(description, reason: unsafe String(validatingCString: gai_strerror(status)) ?? "error \(status)")
        }
        defer { unsafe freeaddrinfo(list) }
        var lastError = SystemError.address(description, reason: "it resolves to no address")
        var entry = unsafe list
        while let current = unsafe entry {
            do {
                // SAFETY: getaddrinfo's entries are valid until freeaddrinfo.
                return try unsafe body(current.pointee.ai_family, current.pointee.ai_addr, current.pointee.ai_addrlen)
            } catch { lastError = error }
            unsafe entry = unsafe current.pointee.ai_next
        }
        throw lastError
    }

    /// "ADDRESS:PORT" of a socket address (IPv6 in brackets); nil if it is not IPv4 or IPv6.
    static func describe(_ storage: sockaddr_storage) -> String? {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        var copy = storage
        let family = CInt(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return nil }
        let size = socklen_t(family == AF_INET6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        // SAFETY: getnameinfo reads the address and writes NUL-terminated strings into the two local arrays.
        let status = unsafe withUnsafePointer(to: &copy) {
            unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                unsafe getnameinfo($0, size, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard status == 0 else { return nil }
        let text = { (chars: [CChar]) in String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return Endpoint(host: text(host), port: UInt16(text(service)) ?? 0).description
    }
}

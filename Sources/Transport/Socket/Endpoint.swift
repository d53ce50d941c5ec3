import Glibc

/// A TCP address given as HOST:PORT (`[v6]:PORT` for IPv6), resolved with getaddrinfo.
package struct Endpoint: Sendable, CustomStringConvertible {
    package let host: String
    package let port: UInt16

    /// Parses `text`; the host may be a name, an IPv4 address or a bracketed IPv6 address. Port
    /// 0 (any free port) only for an address to listen on.
    package init(parsing text: String, listening: Bool = false) throws(TransportError) {
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

    package var description: String { Self.describe(host: host, port: port) }

    /// HOST:PORT, with an IPv6 host in brackets.
    package static func describe(host: String, port: UInt16) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The socket addresses `host` resolves to, for `body`; the first one that `body` accepts wins.
    func withResolvedAddresses<T>(
        passive: Bool, _ body: (CInt, UnsafePointer<sockaddr>, socklen_t) throws(TransportError) -> T?
    ) throws(TransportError) -> T {
        // SAFETY: a zeroed addrinfo is the documented empty hint; only two plain fields are set.
        var hints = unsafe addrinfo()
        unsafe hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        unsafe hints.ai_flags = passive ? AI_PASSIVE : 0
        var list: UnsafeMutablePointer<addrinfo>?
        // SAFETY: getaddrinfo fills `list`, freed below with freeaddrinfo.
        let status = unsafe getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else {
            // SAFETY: gai_strerror returns a static string.
            throw .address(description, reason: unsafe String(validatingCString: gai_strerror(status)) ?? "error \(status)")
        }
        defer { unsafe freeaddrinfo(list) }
        var lastError: TransportError = .address(description, reason: "it resolves to no address")
        var entry = unsafe list
        while let current = unsafe entry {
            do {
                // SAFETY: getaddrinfo's entries are valid until freeaddrinfo.
                if let result = try unsafe body(current.pointee.ai_family, current.pointee.ai_addr, current.pointee.ai_addrlen) {
                    return result
                }
            } catch { lastError = error }
            unsafe entry = unsafe current.pointee.ai_next
        }
        throw lastError
    }
}

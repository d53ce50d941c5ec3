import Glibc
import LinuxSystem
import Synchronization

/// Opens authenticated connections to one page server, and gets them back after the server
/// went away: a lost connection is retried with backoff until the server answers again or
/// `reconnectTimeoutMilliseconds` pass. A server that comes back with another snapshot (a
/// different fingerprint) or another secret is refused for good: the guest must never be fed
/// pages of another snapshot.
package final class PageServerConnector: Sendable {
    package let endpoint: Endpoint
    let security: TransportSecurity
    let reconnectTimeoutMilliseconds: Int
    let log: @Sendable (String) -> Void
    /// The fingerprint of the first connection; later ones must match it.
    private let fingerprint = Locked<UInt64?>(nil)
    let reconnects = Atomic<UInt64>(0)

    /// A request must see its answer start within this long, or the connection counts as lost.
    static let requestTimeoutMilliseconds = 15_000
    static let connectTimeoutMilliseconds: Int32 = 5000

    package init(endpoint: Endpoint, security: TransportSecurity, reconnectTimeoutMilliseconds: Int, log: @escaping @Sendable (String) -> Void) {
        self.endpoint = endpoint
        self.security = security
        self.reconnectTimeoutMilliseconds = reconnectTimeoutMilliseconds
        self.log = log
    }

    /// A new authenticated connection to the server, serving the same snapshot as the first;
    /// a `background` one asks the server to serve it at lower priority than fault requests.
    func connect(background: Bool = false) throws(TransportError) -> FramedConnection {
        let socket: StreamSocket
        do { socket = try StreamSocket.connect(to: endpoint, timeoutMilliseconds: Self.connectTimeoutMilliseconds) } catch {
            throw TransportError(error)
        }
        socket.setReceiveTimeout(milliseconds: WireProtocol.handshakeTimeoutMilliseconds)
        let connection = try security.connection(socket, server: false, host: endpoint.host)
        let served = try Handshake.join(connection, security: security)
        let expected = fingerprint.withLock { known in
            if known == nil { known = served }
            return known!
        }
        guard served == expected else {
            throw .refused(peer: socket.peer, message: "it now serves another snapshot (fingerprint 0x\(String(served, radix: 16)), the guest's is 0x\(String(expected, radix: 16)))")
        }
        socket.setReceiveTimeout(milliseconds: Self.requestTimeoutMilliseconds)
        if background { try connection.sendFrame(.background, []) }
        return connection
    }

    /// After `error` lost a connection: connects again, retrying while the server is away, for
    /// up to the reconnect timeout from `outage` (when the request being retried first lost its
    /// connection; nil: now, which it is then set to). A server that takes every connection and
    /// drops every request is away too: its requests end at that deadline, not after a new one
    /// per connection.
    func reconnect(after error: TransportError, background: Bool = false, outage: inout Int?) throws(TransportError) -> FramedConnection {
        log("page server \(endpoint) lost (\(error)); the guest waits for its memory while Engram reconnects")
        var delay = 50
        if outage != nil { usleep(UInt32(delay * 1000)) }  // dropped again right after a reconnect: no tight loop
        let start = outage ?? Int(MonotonicClock.milliseconds())
        outage = start
        while true {
            guard Int(MonotonicClock.milliseconds()) - start < reconnectTimeoutMilliseconds else {
                throw .socket(peer: endpoint.description, call: "reconnect for \(reconnectTimeoutMilliseconds / 1000) s", .timedOut)
            }
            do {
                let connection = try connect(background: background)
                reconnects.add(1, ordering: .relaxed)
                log("page server \(endpoint) is back after \(Int(MonotonicClock.milliseconds()) - start) ms; the restore goes on")
                return connection
            } catch where error.isConnectionLoss {
                usleep(UInt32(delay * 1000))
                delay = min(delay * 2, 1000)
            }
        }
    }

    /// After `error` lost a connection, with no request retried on it.
    func reconnect(after error: TransportError, background: Bool = false) throws(TransportError) -> FramedConnection {
        var outage: Int?
        return try reconnect(after: error, background: background, outage: &outage)
    }
}

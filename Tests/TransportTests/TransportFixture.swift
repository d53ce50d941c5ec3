import SnapshotTestSupport
import LinuxSystem
import Foundation
import Glibc
import GuestMemory
import Paging
import SnapshotFormat
import TestSupport
@testable import Transport

/// A real snapshot file served by a real page server on 127.0.0.1, for the client to talk to.
enum TransportFixture {
    static let secret = SharedSecret(bytes: Array("engram test secret, 32 bytes ok!".utf8))

    /// TLS 1.3 keyed by `secret` (what --secret-file gives), or plaintext with it.
    static func security(_ secret: SharedSecret = secret, tls: Bool = true) -> TransportSecurity {
        // A key derived from a secret always makes a context; failing here is a broken OpenSSL.
        tls ? try! TransportSecurity.preSharedKey(secret) : .plaintext(secret)
    }
    static let ramPages: UInt64 = 2048
    static let highPages: UInt64 = 256

    /// "ram": data every third page and in 100..<1400 (longer than one READ), zero gaps
    /// between; "high": sparse. Every byte depends on `seed`, so two seeds are two snapshots.
    static func isFilled(region: Int, page: UInt64) -> Bool {
        region == 0 ? (page % 3 == 0 || (100..<1400).contains(page)) : page % 7 == 2
    }

    static func pageBytes(region: Int, page: UInt64, seed: UInt64) -> [UInt8] {
        var state = (UInt64(region + 1) << 48) ^ (page &* 0x9E37_79B9_7F4A_7C15) ^ seed
        var words = [UInt64](repeating: 0, count: 512)
        for index in 0..<512 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            words[index] = state | 1
        }
        return words.withUnsafeBytes { Array($0) }
    }

    /// Writes the two-region snapshot (state derived from `seed`) and opens it as a chain.
    static func snapshot(in directory: TemporaryDirectory, name: String = "base.snap", seed: UInt64 = 0) throws -> SnapshotChain {
        let ram = try GuestRegion(name: "ram", sizeInBytes: ramPages * 4096, backing: .memfd)
        let high = try GuestRegion(name: "high", sizeInBytes: highPages * 4096, backing: .memfd)
        for (index, region) in [ram, high].enumerated() {
            for page in 0..<region.sizeInBytes / 4096 where isFilled(region: index, page: page) {
                try region.write(pageBytes(region: index, page: page, seed: seed), at: RegionOffset(page * 4096))
            }
        }
        let memory = GuestMemoryMap(regions: [ram, high], mappings: [
            GuestMapping(guestAddress: GuestAddress(0), sizeInBytes: ram.sizeInBytes, region: ram, regionOffset: RegionOffset(0)),
            GuestMapping(guestAddress: GuestAddress(1 << 32), sizeInBytes: high.sizeInBytes, region: high, regionOffset: RegionOffset(0)),
        ])
        let path = directory.path(name)
        try SnapshotWriter.writeFull(memory: memory, state: (0..<777).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) }, to: path)
        return try SnapshotChain(path: path)
    }

    /// A client connector for `endpoint`.
    static func connector(
        _ endpoint: Endpoint, secret: SharedSecret = secret, tls: Bool = true, reconnectTimeoutMilliseconds: Int = 10_000
    ) -> PageServerConnector {
        PageServerConnector(endpoint: endpoint, security: security(secret, tls: tls), reconnectTimeoutMilliseconds: reconnectTimeoutMilliseconds, log: { _ in })
    }

    /// A free TCP port on 127.0.0.1, chosen by the kernel: `Endpoint(parsing:)` refuses port 0,
    /// so the listener cannot ask for "any port" itself.
    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket")
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        precondition(bound == 0, "bind")
        var size = length
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) } }
        return UInt16(bigEndian: address.sin_port)
    }

    /// Makes something listening on a free port, trying again if another process took the port meanwhile.
    static func listening<T>(_ make: (Endpoint) throws -> T) throws -> T {
        var attempt = 0
        while true {
            let endpoint = try Endpoint(parsing: "127.0.0.1:\(freePort())")
            do { return try make(endpoint) } catch let error as TransportError {
                guard case .socket(_, "bind", _) = error, attempt < 20 else { throw error }
                attempt += 1
            }
        }
    }

    /// A frame as raw bytes: u32 length (type byte included), type, payload.
    static func frame(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] { le(UInt32(payload.count + 1)) + [type] + payload }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<T.bitWidth / 8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

/// A page server running on its own thread for the rest of the test process (`run` never returns).
final class TestServer: Sendable {
    let server: PageServer
    let endpoint: Endpoint

    let tls: Bool

    init(
        chain: SnapshotChain, secret: SharedSecret = TransportFixture.secret, tls: Bool = true, security: TransportSecurity? = nil,
        maximumConnections: Int = 64, log: @escaping @Sendable (String) -> Void = { _ in }
    ) throws {
        self.tls = tls
        let server = try TransportFixture.listening { endpoint in
            try PageServer(chain: chain, security: security ?? TransportFixture.security(secret, tls: tls), listening: endpoint, maximumConnections: maximumConnections, log: log)
        }
        self.server = server
        // The port the server reports, not the one asked for: the client must reach it there.
        endpoint = try Endpoint(parsing: "127.0.0.1:\(server.port)")
        Thread.detachNewThread { try? server.run() }
    }

    func connector(secret: SharedSecret = TransportFixture.secret, tls: Bool? = nil, reconnectTimeoutMilliseconds: Int = 10_000) -> PageServerConnector {
        TransportFixture.connector(endpoint, secret: secret, tls: tls ?? self.tls, reconnectTimeoutMilliseconds: reconnectTimeoutMilliseconds)
    }

    func source() throws -> RemotePageSource { try RemotePageSource(connector: connector()) }

    /// A connection past the handshake, for sending what the client API never would.
    func authenticatedConnection() throws -> FramedConnection {
        let connection = try connector().connect()
        connection.socket.setReceiveTimeout(milliseconds: 20_000)  // a hang guard, not a measurement
        return connection
    }
}

extension PageSource {
    /// `count` pages of `region` from `first`, read through `readPages`.
    func bytes(region: Int, first: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAA, count: count * 4096)
        var span = bytes.mutableSpan
        var raw = span.mutableBytes
        try readPages(region: region, firstPage: PageIndex(first), into: &raw)
        return bytes
    }

    /// `run` read as the background fill reads, naming `next` as the read that follows.
    func backgroundBytes(_ run: PageRun, then next: PageRun?) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xAA, count: run.count * 4096)
        var span = bytes.mutableSpan
        var raw = span.mutableBytes
        try readPagesInBackground(region: run.region, firstPage: run.firstPage, into: &raw, thenExpecting: next)
        return bytes
    }
}

extension FramedConnection {
    /// Reads the ERROR frame the server must answer with, then checks the server closed the
    /// connection; returns the error's text, nil if something else came.
    func errorThenClose() -> (message: String?, closed: Bool) {
        let message: String?
        do {
            let header = try readFrameHeader(maximumLength: WireProtocol.maximumMessageLength)
            let payload = try readPayload(header.length)
            message = header.type == .error ? String(decoding: payload, as: UTF8.self) : nil
        } catch { return (nil, false) }
        do {
            _ = try readFrameHeader(maximumLength: 1 << 20)
            return (message, false)
        } catch { return (message, error.isConnectionLoss) }
    }
}


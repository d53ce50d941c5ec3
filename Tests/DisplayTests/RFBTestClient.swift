import Display
import Foundation
import Glibc

/// A minimal RFB viewer over a blocking socket: enough of RFC 6143 to check the server, with
/// decoders for Raw and ZRLE written from the RFC, independently of the server's encoders.
final class RFBTestClient {
    struct Closed: Error {}
    struct Failure: Error, CustomStringConvertible { let description: String }

    struct ServerInit {
        let width: Int, height: Int
        let format: [UInt8]
        let name: String
    }

    struct Rectangle {
        let area: ScreenRectangle
        let encoding: Int32
        /// The client's pixel values, row after row.
        let pixels: [UInt32]
    }

    let fd: CInt
    var format = PixelFormat.native
    /// The screen as the updates so far painted it (client pixel values), once past the handshake.
    private(set) var screen: [UInt32] = []
    private(set) var screenWidth = 0
    private let inflater = Inflater()

    /// Connects to `host`:`port`; reads give up after 10 s so a broken server cannot hang a test.
    init(host: String = "127.0.0.1", port: UInt16) throws {
        var hints = addrinfo()
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICHOST
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let entry = list else { throw Failure(description: "resolve \(host)") }
        defer { freeaddrinfo(list) }
        fd = socket(entry.pointee.ai_family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0, connect(fd, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "connect to \(host):\(port): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A client with no connection, for its decoders alone.
    static func detached(format: PixelFormat) throws -> RFBTestClient {
        let client = RFBTestClient(fd: -1)
        client.format = format
        return client
    }

    private init(fd: CInt) { self.fd = fd }

    deinit { if fd >= 0 { close(fd) } }

    func send(_ bytes: [UInt8]) throws {
        guard Glibc.send(fd, bytes, bytes.count, CInt(MSG_NOSIGNAL)) == bytes.count else { throw Closed() }
    }

    func read(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let received = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + offset, count - offset, 0) }
            if received == 0 || (received < 0 && errno == ECONNRESET) { throw Closed() }
            guard received > 0 else { throw Failure(description: "recv: errno \(errno)") }
            offset += received
        }
        return bytes
    }

    func u8() throws -> UInt8 { try read(1)[0] }
    func u16() throws -> Int { try read(2).reduce(0) { $0 << 8 | Int($1) } }
    func u32() throws -> Int { try read(4).reduce(0) { $0 << 8 | Int($1) } }

    /// True once the server has closed the connection (reads and drops anything before that).
    func isClosedByServer() -> Bool {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let received = recv(fd, &scratch, scratch.count, 0)
            if received == 0 || (received < 0 && (errno == ECONNRESET || errno == EPIPE)) { return true }
            if received < 0 { return false }  // the 10 s timeout: still open
        }
    }

    static func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    static func be32(_ value: Int) -> [UInt8] { be16(value >> 16 & 0xFFFF) + be16(value & 0xFFFF) }

    /// Version and security up to (not including) SecurityResult / ClientInit. Returns the
    /// security types offered (3.7, 3.8) or chosen by the server (3.3).
    func negotiate(version: String) throws -> [UInt8] {
        guard String(decoding: try read(12), as: UTF8.self) == "RFB 003.008\n" else { throw Failure(description: "server version") }
        try send(Array("RFB \(version)\n".utf8))
        if version == "003.003" { return [UInt8(try u32())] }
        let count = Int(try u8())
        return try read(count)
    }

    /// A whole handshake; `password` answers VNC Authentication when the server asks for it.
    @discardableResult
    func handshake(version: String = "003.008", password: String? = nil, shared: Bool = true) throws -> ServerInit {
        let offered = try negotiate(version: version)
        let type = offered.first ?? 0
        if version != "003.003" { try send([type]) }
        if type == 2 {
            let challenge = try read(16)
            try send(VNCPassword.response(challenge: challenge, password: Array((password ?? "").utf8)))
        }
        if type == 2 || version >= "003.008" {
            let result = try u32()
            guard result == 0 else { throw Failure(description: "security result \(result)") }
        }
        try send([shared ? 1 : 0])
        let width = try u16(), height = try u16()
        let format = try read(16)
        let name = String(decoding: try read(try u32()), as: UTF8.self)
        screen = [UInt32](repeating: 0, count: width * height)
        screenWidth = width
        return ServerInit(width: width, height: height, format: format, name: name)
    }

    func setPixelFormat(_ format: PixelFormat) throws {
        try send([0, 0, 0, 0] + format.encoded)
        self.format = format
    }

    func setEncodings(_ encodings: [Int32]) throws {
        try send([2, 0] + Self.be16(encodings.count) + encodings.flatMap { Self.be32(Int(UInt32(bitPattern: $0))) })
    }

    func requestUpdate(incremental: Bool, x: Int = 0, y: Int = 0, width: Int, height: Int) throws {
        try send([3, incremental ? 1 : 0] + Self.be16(x) + Self.be16(y) + Self.be16(width) + Self.be16(height))
    }

    func keyEvent(_ keysym: UInt32, down: Bool) throws {
        try send([4, down ? 1 : 0, 0, 0] + Self.be32(Int(keysym)))
    }

    /// Reads one FramebufferUpdate, decodes its rectangles and paints them on `screen`.
    func readUpdate() throws -> [Rectangle] {
        let rectangles = try readRectangles()
        for rectangle in rectangles {
            let area = rectangle.area
            for y in 0..<area.height {
                for x in 0..<area.width { screen[(area.y + y) * screenWidth + area.x + x] = rectangle.pixels[y * area.width + x] }
            }
        }
        return rectangles
    }

    private func readRectangles() throws -> [Rectangle] {
        let type = try u8()
        guard type == 0 else { throw Failure(description: "message type \(type), expected FramebufferUpdate") }
        _ = try u8()
        let count = try u16()
        return try (0..<count).map { _ in
            let area = ScreenRectangle(x: try u16(), y: try u16(), width: try u16(), height: try u16())
            let encoding = Int32(bitPattern: UInt32(try u32()))
            switch encoding {
            case 0:
                let bytes = try read(area.width * area.height * bytesPerPixel)
                return Rectangle(area: area, encoding: 0, pixels: decodePixels(bytes, size: bytesPerPixel, compact: false))
            case 16:
                let compressed = try read(try u32())
                return Rectangle(area: area, encoding: 16, pixels: try decodeZRLE(compressed, area: area))
            default:
                throw Failure(description: "encoding \(encoding)")
            }
        }
    }

    var bytesPerPixel: Int { Int(format.bitsPerPixel) / 8 }

    /// The colour bits of a 32-bit format, and whether a CPIXEL is 3 bytes (RFC 6143 §7.7.6).
    var compactLayout: (compact: Bool, lowBytes: Bool) {
        let mask = UInt32(format.redMax) << UInt32(format.redShift) | UInt32(format.greenMax) << UInt32(format.greenShift)
            | UInt32(format.blueMax) << UInt32(format.blueShift)
        guard format.trueColour, format.bitsPerPixel == 32, format.depth <= 24 else { return (false, false) }
        if mask & 0xFF00_0000 == 0 { return (true, true) }
        if mask & 0x0000_00FF == 0 { return (true, false) }
        return (false, false)
    }

    var bytesPerCPixel: Int { compactLayout.compact ? 3 : bytesPerPixel }

    /// Pixel values from wire bytes, `size` bytes each.
    func decodePixels(_ bytes: some Collection<UInt8>, size: Int, compact: Bool) -> [UInt32] {
        let array = Array(bytes)
        return stride(from: 0, to: array.count, by: size).map { start in
            var wire = Array(array[start..<(start + size)])
            if compact {
                // Put the missing byte back where it belongs, as zero.
                let (_, low) = compactLayout
                wire = format.bigEndian == low ? [0] + wire : wire + [0]
            }
            let ordered = format.bigEndian ? wire : wire.reversed()
            return ordered.reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    /// Inflates one ZRLE rectangle with the connection's stream and decodes its tiles.
    func decodeZRLE(_ compressed: [UInt8], area: ScreenRectangle) throws -> [UInt32] {
        let tileCount = ((area.width + 63) / 64) * ((area.height + 63) / 64)
        let data = try inflater.inflate(compressed, expectingAtMost: area.width * area.height * 4 + tileCount * 80 + 64)
        var pixels = [UInt32](repeating: 0, count: area.width * area.height)
        var offset = 0
        let cpixel = bytesPerCPixel
        func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard offset + count <= data.count else { throw Failure(description: "ZRLE data ends early") }
            defer { offset += count }
            return data[offset..<(offset + count)]
        }
        func colours(_ count: Int) throws -> [UInt32] { decodePixels(try take(count * cpixel), size: cpixel, compact: cpixel == 3) }
        func runLength() throws -> Int {
            var length = 1
            while true {
                let byte = Int(try take(1).first!)
                length += byte
                if byte != 255 { return length }
            }
        }
        for tileY in stride(from: 0, to: area.height, by: 64) {
            for tileX in stride(from: 0, to: area.width, by: 64) {
                let width = min(64, area.width - tileX), height = min(64, area.height - tileY)
                var tile: [UInt32] = []
                let subencoding = Int(try take(1).first!)
                switch subencoding {
                case 0: tile = try colours(width * height)
                case 1: tile = [UInt32](repeating: try colours(1)[0], count: width * height)
                case 2...16:
                    let palette = try colours(subencoding)
                    let bits = subencoding == 2 ? 1 : subencoding <= 4 ? 2 : 4
                    for _ in 0..<height {
                        let row = Array(try take((width * bits + 7) / 8))
                        for x in 0..<width {
                            let bit = x * bits
                            let index = Int(row[bit / 8] >> UInt8(8 - bits - bit % 8)) & ((1 << bits) - 1)
                            guard index < palette.count else { throw Failure(description: "palette index \(index)") }
                            tile.append(palette[index])
                        }
                    }
                case 128:
                    while tile.count < width * height {
                        let colour = try colours(1)[0]
                        tile += [UInt32](repeating: colour, count: try runLength())
                    }
                case 130...255:
                    let palette = try colours(subencoding - 128)
                    while tile.count < width * height {
                        let byte = Int(try take(1).first!)
                        let count = byte & 0x80 != 0 ? try runLength() : 1
                        tile += [UInt32](repeating: palette[byte & 0x7F], count: count)
                    }
                default:
                    throw Failure(description: "ZRLE subencoding \(subencoding)")
                }
                guard tile.count == width * height else { throw Failure(description: "ZRLE tile of \(tile.count) pixels") }
                for y in 0..<height {
                    for x in 0..<width { pixels[(tileY + y) * area.width + tileX + x] = tile[y * width + x] }
                }
            }
        }
        guard offset == data.count else { throw Failure(description: "\(data.count - offset) bytes left after the ZRLE tiles") }
        return pixels
    }

    /// The value the client expects for framebuffer pixel `pixel` (`0x00RRGGBB`) in its format.
    func expected(_ pixel: UInt32) -> UInt32 {
        func scale(_ component: UInt32, _ max: UInt16, _ shift: UInt8) -> UInt32 {
            ((component * UInt32(max) + 127) / 255) << UInt32(shift)
        }
        return scale(pixel >> 16 & 0xFF, format.redMax, format.redShift) | scale(pixel >> 8 & 0xFF, format.greenMax, format.greenShift)
            | scale(pixel & 0xFF, format.blueMax, format.blueShift)
    }
}

/// The 44-byte little-endian header in front of every vsock packet (virtio 1.x, 5.10.6).
struct VsockHeader: Sendable, Equatable {
    static let size = 44

    var sourceCID: UInt64 = 0
    var destinationCID: UInt64 = 0
    var sourcePort: UInt32 = 0
    var destinationPort: UInt32 = 0
    /// Payload bytes after the header.
    var length: UInt32 = 0
    var type: UInt16 = VsockHeader.streamType
    var operation: UInt16 = 0
    var flags: UInt32 = 0
    /// The sender's receive buffer for this connection, and what it has consumed of it.
    var bufferAllocation: UInt32 = 0
    var forwardCount: UInt32 = 0

    /// VIRTIO_VSOCK_TYPE_STREAM, the only socket type served.
    static let streamType: UInt16 = 1

    init() {}

    /// Reads the header at `offset` of `bytes` (44 bytes must be there).
    init(loading bytes: [UInt8], at offset: Int) {
        sourceCID = Self.load(UInt64.self, bytes, offset)
        destinationCID = Self.load(UInt64.self, bytes, offset + 8)
        sourcePort = Self.load(UInt32.self, bytes, offset + 16)
        destinationPort = Self.load(UInt32.self, bytes, offset + 20)
        length = Self.load(UInt32.self, bytes, offset + 24)
        type = Self.load(UInt16.self, bytes, offset + 28)
        operation = Self.load(UInt16.self, bytes, offset + 30)
        flags = Self.load(UInt32.self, bytes, offset + 32)
        bufferAllocation = Self.load(UInt32.self, bytes, offset + 36)
        forwardCount = Self.load(UInt32.self, bytes, offset + 40)
    }

    /// Writes the header at `offset` of `bytes`.
    func store(into bytes: inout [UInt8], at offset: Int) {
        Self.put(sourceCID, &bytes, offset)
        Self.put(destinationCID, &bytes, offset + 8)
        Self.put(sourcePort, &bytes, offset + 16)
        Self.put(destinationPort, &bytes, offset + 20)
        Self.put(length, &bytes, offset + 24)
        Self.put(type, &bytes, offset + 28)
        Self.put(operation, &bytes, offset + 30)
        Self.put(flags, &bytes, offset + 32)
        Self.put(bufferAllocation, &bytes, offset + 36)
        Self.put(forwardCount, &bytes, offset + 40)
    }

    private static func load<T: FixedWidthInteger>(_ type: T.Type, _ bytes: [UInt8], _ offset: Int) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + index]) << (8 * index) }
        return value
    }

    private static func put<T: FixedWidthInteger>(_ value: T, _ bytes: inout [UInt8], _ offset: Int) {
        for index in 0..<MemoryLayout<T>.size { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
}

/// The header's `op` field.
enum VsockOperation {
    static let request: UInt16 = 1
    static let response: UInt16 = 2
    static let reset: UInt16 = 3
    static let shutdown: UInt16 = 4
    static let readWrite: UInt16 = 5
    static let creditUpdate: UInt16 = 6
    static let creditRequest: UInt16 = 7
}

/// SHUTDOWN's flags: the sender will receive no more, send no more.
enum VsockShutdown {
    static let receive: UInt32 = 1
    static let send: UInt32 = 2
}

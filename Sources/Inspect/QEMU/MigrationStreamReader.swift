/// Reads a QEMU migration stream front to back, big-endian, through one large buffer refilled by
/// positioned reads: records are a few bytes each and pages 4 KiB, so one system call per record
/// would make a 1 GiB stream cost a quarter of a million calls. Every read is checked against the
/// file's end, so a truncated stream is a `.damaged` error naming the offset, never a crash.
struct MigrationStreamReader {
    let file: ImageFile
    /// File offset of the next byte to read.
    private(set) var offset: UInt64 = 0
    /// Bytes of the file from `bufferStart`; `bufferCount` of them are valid.
    private var buffer: [UInt8]
    private var bufferStart: UInt64 = 0
    private var bufferCount = 0

    /// Two megabytes per read: large enough that system calls vanish from the profile, small
    /// enough to stay in cache.
    static let chunkSize = 2 << 20

    init(file: ImageFile) {
        self.file = file
        buffer = [UInt8](repeating: 0, count: Self.chunkSize)
    }

    var path: String { file.path }
    var bytesLeft: UInt64 { file.sizeInBytes - offset }

    /// Makes `[offset, offset + count)` readable from the buffer; `count` is at most `chunkSize`.
    private mutating func ensure(_ count: Int, _ what: @autoclosure () -> String) throws(InspectError) {
        let end = offset + UInt64(count)
        if offset >= bufferStart, end <= bufferStart + UInt64(bufferCount) { return }
        guard UInt64(count) <= bytesLeft else {
            throw .damaged(path: path, reason: "it ends at offset \(file.sizeInBytes) inside \(what()) that starts at offset \(offset) (\(count) bytes needed, \(bytesLeft) left)")
        }
        let fill = Int(min(UInt64(Self.chunkSize), bytesLeft))
        let start = offset
        try buffer.withMutableBytes { (whole) throws(InspectError) in
            try whole.withBytes(in: 0..<fill) { (part) throws(InspectError) in try file.read(into: &part, at: start) }
        }
        bufferStart = start
        bufferCount = fill
    }

    /// The buffer index of the current offset (after `ensure`).
    private var index: Int { Int(offset - bufferStart) }

    mutating func byte(_ what: @autoclosure () -> String) throws(InspectError) -> UInt8 {
        try ensure(1, what())
        let value = buffer[index]
        offset += 1
        return value
    }

    /// The next byte, without consuming it; nil at the end of the file.
    mutating func peekByte() throws(InspectError) -> UInt8? {
        guard bytesLeft > 0 else { return nil }
        try ensure(1, "a section type")
        return buffer[index]
    }

    mutating func bigEndian16(_ what: @autoclosure () -> String) throws(InspectError) -> UInt16 {
        UInt16(try bigEndian(2, what()))
    }

    mutating func bigEndian32(_ what: @autoclosure () -> String) throws(InspectError) -> UInt32 {
        UInt32(try bigEndian(4, what()))
    }

    mutating func bigEndian64(_ what: @autoclosure () -> String) throws(InspectError) -> UInt64 {
        try bigEndian(8, what())
    }

    private mutating func bigEndian(_ count: Int, _ what: @autoclosure () -> String) throws(InspectError) -> UInt64 {
        try ensure(count, what())
        let start = index
        var value: UInt64 = 0
        for position in start..<start + count { value = value << 8 | UInt64(buffer[position]) }
        offset += UInt64(count)
        return value
    }

    /// `count` bytes (a name: callers bound `count` by the format's limits first).
    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws(InspectError) -> [UInt8] {
        try ensure(count, what())
        let start = index
        offset += UInt64(count)
        return Array(buffer[start..<start + count])
    }

    /// A name stored as a one-byte length then its bytes (RAMBlock idstrs, section names).
    mutating func shortString(_ what: @autoclosure () -> String) throws(InspectError) -> String {
        let length = Int(try byte("the length of \(what())"))
        return String(decoding: try bytes(length, what()), as: UTF8.self)
    }

    /// Moves past `count` bytes (page data stays in the file: only its offset is kept).
    mutating func skip(_ count: UInt64, _ what: @autoclosure () -> String) throws(InspectError) {
        guard count <= bytesLeft else {
            throw .damaged(path: path, reason: "it ends at offset \(file.sizeInBytes) inside \(what()) that starts at offset \(offset) (\(count) bytes needed, \(bytesLeft) left)")
        }
        offset += count
    }
}

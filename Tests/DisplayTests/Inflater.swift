import CZlib

/// A zlib inflate stream that lives across calls, as a viewer keeps one for ZRLE.
final class Inflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init() {
        stream.initialize(to: z_stream())
        precondition(inflateInit_(stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    /// Inflates `input` (a sync-flushed piece of the stream); everything it holds comes out.
    func inflate(_ input: [UInt8], expectingAtMost limit: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: limit)
        var input = input
        let produced: Int = try input.withUnsafeMutableBytes { source in
            try output.withUnsafeMutableBytes { destination in
                stream.pointee.next_in = source.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_in = UInt32(source.count)
                stream.pointee.next_out = destination.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = UInt32(destination.count)
                let status = CZlib.inflate(stream, Z_SYNC_FLUSH)
                guard status == Z_OK || status == Z_STREAM_END, stream.pointee.avail_in == 0 else { throw ZlibFailure(code: status) }
                return destination.count - Int(stream.pointee.avail_out)
            }
        }
        return Array(output[..<produced])
    }

    /// One-shot zlib `uncompress` of a whole stream into at most `limit` bytes.
    static func uncompress(_ input: [UInt8], expectedBytes limit: Int) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: limit)
        var length = uLongf(limit)
        let status = CZlib.uncompress(&output, &length, input, uLong(input.count))
        guard status == Z_OK else { throw ZlibFailure(code: status) }
        return Array(output[..<Int(length)])
    }
}

struct ZlibFailure: Error { let code: Int32 }

import CLZMA

/// Decompresses an xz stream (a bzImage's payload) with liblzma, into at most `limit` bytes.
package enum XZDecompressor {
    package static func decompress(_ input: [UInt8], expectedSize: Int, limit: Int) -> [UInt8]? {
        guard expectedSize > 0, expectedSize <= limit else { return nil }
        var stream = unsafe lzma_stream()
        guard unsafe lzma_stream_decoder(&stream, UInt64.max, 0) == LZMA_OK else { return nil }
        defer { unsafe lzma_end(&stream) }
        var output = [UInt8](repeating: 0, count: expectedSize)
        // SAFETY: liblzma reads `input` and writes `output` only within the lengths given.
        let result = unsafe input.withUnsafeBufferPointer { source in
            unsafe output.withUnsafeMutableBufferPointer { destination in
                unsafe stream.next_in = source.baseAddress
                unsafe stream.avail_in = source.count
                unsafe stream.next_out = destination.baseAddress
                unsafe stream.avail_out = destination.count
                return unsafe lzma_code(&stream, LZMA_FINISH)
            }
        }
        guard result == LZMA_STREAM_END, unsafe Int(stream.total_out) == expectedSize else { return nil }
        return output
    }
}

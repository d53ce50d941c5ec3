import CZlib

/// One zlib deflate stream that lives across calls: ZRLE keeps one per connection (the client
/// keeps the matching inflate stream), and a PNG's IDAT data is one stream fed row by row.
///
/// A class so the z_stream (which zlib points into itself) never moves; used by one thread at a time.
@safe
package final class DeflateStream {
    /// What to do after the input: nothing (zlib may hold data back), flush to a byte
    /// boundary so the receiver can decode everything so far, or end the stream.
    package enum Flush {
        case none, sync, finish

        var zlibValue: Int32 {
            switch self {
            case .none: Z_NO_FLUSH
            case .sync: Z_SYNC_FLUSH
            case .finish: Z_FINISH
            }
        }
    }

    private let stream: UnsafeMutablePointer<z_stream>
    private let scratch: UnsafeMutablePointer<UInt8>
    private static let scratchBytes = 64 << 10
    private var finished = false

    /// A stream at compression `level` (0–9; 1 is fast and still shrinks screens well).
    package init(level: Int32) throws(SystemError) {
        // SAFETY: allocated once, zeroed (zalloc/zfree nil: zlib's allocator), freed in deinit.
        unsafe stream = .allocate(capacity: 1)
        unsafe stream.initialize(to: z_stream())
        unsafe scratch = .allocate(capacity: Self.scratchBytes)
        // SAFETY: deflateInit_ is what the deflateInit macro expands to; it reads the version
        // string and struct size to check this program and the library agree.
        let status = unsafe deflateInit_(stream, level, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            unsafe stream.deallocate()
            unsafe scratch.deallocate()
            throw SystemError.compression(call: "deflateInit", code: status)
        }
    }

    deinit {
        // SAFETY: the stream was initialised in init and is ended once, here.
        _ = unsafe deflateEnd(stream)
        unsafe stream.deallocate()
        unsafe scratch.deallocate()
    }

    /// Compresses `input` and appends what zlib produces to `output`.
    package func compress(_ input: ArraySlice<UInt8>, flush: Flush, into output: inout [UInt8]) throws(SystemError) {
        precondition(!finished, "a finished deflate stream takes no more input")
        let result: Int32 = unsafe input.withUnsafeBytes { bytes in
            // SAFETY: zlib reads avail_in bytes from next_in (it never writes through it; the
            // header lacks `const`), and writes at most avail_out bytes into the scratch buffer;
            // both pointers are used only inside this closure.
            unsafe stream.pointee.next_in = unsafe UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: Bytef.self))
            unsafe stream.pointee.avail_in = UInt32(bytes.count)
            while true {
                unsafe stream.pointee.next_out = unsafe scratch
                unsafe stream.pointee.avail_out = UInt32(Self.scratchBytes)
                let status = unsafe deflate(stream, flush.zlibValue)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else { return status }
                let produced = Self.scratchBytes - Int(unsafe stream.pointee.avail_out)
                unsafe output.append(contentsOf: UnsafeBufferPointer(start: scratch, count: produced))
                if status == Z_STREAM_END { return status }
                // Done when all input is taken and zlib had room to spare (nothing left to flush).
                let drained = unsafe stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0
                if drained && flush != .finish { return Z_OK }
            }
        }
        unsafe stream.pointee.next_in = nil
        guard result == Z_OK || result == Z_STREAM_END else { throw SystemError.compression(call: "deflate", code: result) }
        if flush == .finish { finished = true }
    }

    package func compress(_ input: [UInt8], flush: Flush, into output: inout [UInt8]) throws(SystemError) {
        try compress(input[...], flush: flush, into: &output)
    }
}

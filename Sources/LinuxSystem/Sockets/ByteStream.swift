/// A connected, blocking byte stream: a socket, or TLS over one. Its two primitives take raw
/// buffers; everything else (arrays, spans) is built on them here, so pointer-free targets use
/// either kind alike.
package protocol ByteStream: AnyObject, Sendable {
    /// The other end, for messages.
    var peer: String { get }
    /// Sends every byte of `bytes`.
    func send(_ bytes: UnsafeRawBufferPointer) throws(SystemError)
    /// Receives up to `buffer.count` bytes; at least one (the peer closing is `.closed`).
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int
    /// Sends what a send left buffered; callers flush at the end of every message.
    func flush() throws(SystemError)
}

extension ByteStream {
    /// Sends every byte of `bytes`.
    package func send(_ bytes: [UInt8]) throws(SystemError) {
        // SAFETY: the view of the array is used only for the send.
        let result: Result<Void, SystemError> = unsafe bytes.withUnsafeBytes { raw in
            do throws(SystemError) {
                try unsafe send(raw)
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Sends every byte of `bytes`.
    package func send(_ bytes: RawSpan) throws(SystemError) {
        // SAFETY: the view covers exactly `bytes` and is used only for the send.
        try unsafe bytes.withUnsafeBytes { (raw) throws(SystemError) in try unsafe send(raw) }
    }

    /// Sends the first `count` bytes of `bytes`.
    package func send(_ bytes: [UInt8], count: Int) throws(SystemError) {
        precondition(count >= 0 && count <= bytes.count, "send of \(count) bytes of \(bytes.count)")
        // SAFETY: the first `count` bytes of the array (checked above), used only for the send.
        let result: Result<Void, SystemError> = unsafe bytes.withUnsafeBytes { raw in
            do throws(SystemError) { return .success(try unsafe send(UnsafeRawBufferPointer(rebasing: raw[0..<count]))) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Receives up to `span.byteCount` bytes into `span`'s start; at least one.
    package func receive(into span: inout MutableRawSpan) throws(SystemError) -> Int {
        // SAFETY: the view covers exactly `span` and is used only for the call.
        try unsafe span.withUnsafeMutableBytes { (raw) throws(SystemError) in try unsafe receive(into: raw) }
    }

    /// Receives up to `count` bytes into `buffer` from `offset` on; at least one.
    package func receive(into buffer: inout [UInt8], at offset: Int, count: Int) throws(SystemError) -> Int {
        precondition(offset >= 0 && count > 0 && offset + count <= buffer.count, "receive outside the buffer")
        // SAFETY: the slice [offset, offset + count) lies inside the array, used only for the call.
        let result: Result<Int, SystemError> = unsafe buffer.withUnsafeMutableBytes { raw in
            do throws(SystemError) {
                return .success(try unsafe receive(into: UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + count)])))
            } catch { return .failure(error) }
        }
        return try result.get()
    }

}

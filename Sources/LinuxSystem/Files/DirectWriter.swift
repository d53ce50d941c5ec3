import Glibc

/// Writes files past the page cache (O_DIRECT) from a page-aligned staging buffer of its own, for
/// files written once and read back later if at all (the object store's cached chunks): a
/// buffered write copies every byte into freshly allocated page-cache pages, which took a cold
/// 512 MiB restore 0.4–0.6 s of CPU, and pushes other files out of the cache; a direct write
/// costs one copy into the staging buffer and leaves the transfer to the device. A file system
/// that refuses O_DIRECT (or a tail shorter than a block) gets an ordinary write.
@safe
package final class DirectWriter: @unchecked Sendable {
    /// The staging memory, mapped at first use and touched only under `lock`.
    private nonisolated(unsafe) var staging: UnsafeMutableRawBufferPointer?
    private let stagingBytes: Int
    private let lock = Locked(())

    /// O_DIRECT's unit for offsets, lengths and buffer addresses: the page, which every common
    /// device's logical block divides.
    static let blockBytes = 4096

    package init(stagingBytes: Int) {
        self.stagingBytes = max(Self.blockBytes, (stagingBytes + Self.blockBytes - 1) / Self.blockBytes * Self.blockBytes)
    }

    deinit {
        // SAFETY: mapped by `buffer()`; nobody can be writing once the last reference is gone.
        if let staging = unsafe staging { _ = unsafe munmap(staging.baseAddress, staging.count) }
    }

    /// Writes `bytes` from offset 0 of `fd`, an empty regular file open for writing.
    package func write(_ bytes: [UInt8], to fd: CInt, subject: String) throws(SystemError) {
        let blocks = bytes.count / Self.blockBytes * Self.blockBytes
        let written = try lock.withLock { _ throws(SystemError) in try writeDirect(bytes, blocks: blocks, fd: fd, subject: subject) }
        guard written < bytes.count else { return }
        try PositionedIO.writeAll(fd, bytes.span.bytes.extracting(written..<bytes.count), at: UInt64(written), subject: subject)
    }

    /// Writes the first `blocks` bytes of `bytes` with O_DIRECT, through the staging buffer; the
    /// bytes written, 0 where the file system or the memory will not have it (the caller writes
    /// the rest as usual). O_DIRECT is off again on return.
    private func writeDirect(_ bytes: [UInt8], blocks: Int, fd: CInt, subject: String) throws(SystemError) -> Int {
        let flags = fcntl(fd, F_GETFL)
        guard blocks > 0, flags >= 0, let staging = buffer(), fcntl(fd, F_SETFL, flags | __O_DIRECT) == 0 else { return 0 }
        defer { _ = fcntl(fd, F_SETFL, flags) }
        var done = 0
        while done < blocks {
            let count = min(staging.count, blocks - done)
            // SAFETY: both ranges lie inside their buffers; the staging buffer is ours under the lock.
            unsafe bytes.withUnsafeBytes { source in
                unsafe staging.baseAddress!.copyMemory(from: source.baseAddress! + done, byteCount: count)
            }
            do {
                try unsafe PositionedIO.writeAll(fd, UnsafeRawBufferPointer(rebasing: staging[0..<count]), at: UInt64(done), subject: subject)
            } catch where error.errno == .invalidArgument && done == 0 {
                // Accepted by fcntl but refused by the file system's write path: buffered, as with no O_DIRECT at all.
                return 0
            }
            done += count
        }
        return done
    }

    /// The staging buffer, mapped on first use; nil if no memory can be had.
    private func buffer() -> UnsafeMutableRawBufferPointer? {
        if let staging = unsafe staging { return unsafe staging }
        let address = unsafe mmap(nil, stagingBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let address = unsafe address, unsafe address != MAP_FAILED else { return nil }
        unsafe staging = UnsafeMutableRawBufferPointer(start: address, count: stagingBytes)
        return unsafe staging
    }
}

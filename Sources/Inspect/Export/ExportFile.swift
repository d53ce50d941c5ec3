import Glibc

/// An output file that appears whole or not at all: written under a temporary name beside its
/// destination, mode 0600 (guest memory holds secrets), then renamed over it.
package final class ExportFile {
    package let path: String
    private let temporaryPath: String
    private var descriptor: CInt
    private var committed = false

    package init(path: String) throws(InspectError) {
        self.path = path
        temporaryPath = path + ".partial-\(getpid())"
        let fd = unsafe open(temporaryPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .systemCall(path: path, name: "open", errno: errno) }
        descriptor = fd
    }

    deinit {
        if !committed {
            close(descriptor)
            // SAFETY: a Swift string passed as a C string for the call.
            unsafe unlink(temporaryPath)
        }
    }

    /// Sets the file's size; what is never written stays a hole that reads as zeros.
    package func setSize(_ size: UInt64) throws(InspectError) {
        guard ftruncate(descriptor, off_t(size)) == 0 else { throw .systemCall(path: path, name: "ftruncate", errno: errno) }
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(InspectError) {
        var done = 0
        while done < bytes.count {
            // SAFETY: [done, count) lies inside `bytes`, which the caller keeps alive for the call.
            let written = unsafe pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + UInt64(done)))
            if written < 0 {
                if errno == EINTR { continue }
                throw .systemCall(path: path, name: "pwrite", errno: errno)
            }
            done += written
        }
    }

    /// Writes an array at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws(InspectError) {
        // SAFETY: the buffer is used only during the call.
        let result: Result<Void, InspectError> = unsafe bytes.withUnsafeBytes { buffer in
            do throws(InspectError) { try unsafe write(buffer, at: offset); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }

    /// Flushes the file and gives it its final name.
    package func commit() throws(InspectError) {
        guard fsync(descriptor) == 0 else { throw .systemCall(path: path, name: "fsync", errno: errno) }
        close(descriptor)
        committed = true
        // SAFETY (rename, unlink): Swift strings passed as C strings for the call.
        guard unsafe rename(temporaryPath, path) == 0 else {
            let error = errno
            unsafe unlink(temporaryPath)
            throw .systemCall(path: path, name: "rename", errno: error)
        }
    }
}

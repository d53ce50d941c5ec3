import Glibc
import SystemPackage

/// Positioned reads and writes that finish the whole range: pread(2)/pwrite(2) through
/// swift-system (which retries calls a signal interrupted), in calls of at most 8 MiB,
/// continuing after short transfers.
package enum PositionedIO {
    /// The most one call moves: large enough for full disk bandwidth, small enough that a
    /// signal or a slow device never holds one call for long.
    package static let maximumCallBytes = 8 << 20

    /// Writes all of `bytes` at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, subject: String) throws(SystemError) {
        let file = FileDescriptor(rawValue: fd)
        var done = 0
        while done < bytes.count {
            let chunk = min(bytes.count - done, maximumCallBytes)
            let written: Int
            do {
                // SAFETY: [done, done + chunk) lies inside `bytes`, which the caller keeps alive for the call.
                written = try unsafe file.write(
                    toAbsoluteOffset: Int64(offset) + Int64(done), UnsafeRawBufferPointer(rebasing: bytes[done..<(done + chunk)]))
            } catch { throw SystemError("pwrite", on: subject, error as? Errno ?? .ioError) }
            guard written > 0 else { throw SystemError("pwrite", on: subject, .ioError) }
            done += written
        }
    }

    /// Writes all of `bytes` at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: RawSpan, at offset: UInt64, subject: String) throws(SystemError) {
        // SAFETY: the view covers exactly `bytes` and does not escape the call.
        try unsafe bytes.withUnsafeBytes { (buffer) throws(SystemError) in try unsafe writeAll(fd, buffer, at: offset, subject: subject) }
    }

    /// Writes an array at `offset`.
    package static func writeAll(_ fd: CInt, _ bytes: [UInt8], at offset: UInt64, subject: String) throws(SystemError) {
        // SAFETY: the buffer is used only during the call.
        let result: Result<Void, SystemError> = unsafe bytes.withUnsafeBytes { buffer in
            do throws(SystemError) { try unsafe writeAll(fd, buffer, at: offset, subject: subject); return .success(()) } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Reads into `span` from `offset` until it is full or the file ends; returns the bytes read.
    package static func read(_ fd: CInt, into span: inout MutableRawSpan, at offset: UInt64, subject: String) throws(SystemError) -> Int {
        // SAFETY: the view covers exactly `span` and does not escape the closure.
        let result: Result<Int, SystemError> = unsafe span.withUnsafeMutableBytes { buffer in
            do throws(SystemError) { return .success(try unsafe read(fd, into: buffer, at: offset, subject: subject)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Reads into `buffer` from `offset` until it is full or the file ends; returns the bytes read.
    package static func read(_ fd: CInt, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, subject: String) throws(SystemError) -> Int {
        let file = FileDescriptor(rawValue: fd)
        var done = 0
        while done < buffer.count {
            let chunk = min(buffer.count - done, maximumCallBytes)
            let count: Int
            do {
                // SAFETY: [done, done + chunk) lies inside `buffer`, which the caller keeps alive for the call.
                count = try unsafe file.read(
                    fromAbsoluteOffset: Int64(offset) + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + chunk)]))
            } catch { throw SystemError("pread", on: subject, error as? Errno ?? .ioError) }
            if count == 0 { break }
            done += count
        }
        return done
    }
}

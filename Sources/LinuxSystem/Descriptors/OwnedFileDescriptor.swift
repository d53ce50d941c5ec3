import Glibc
import Synchronization
import SystemPackage

/// A file descriptor this process owns: closed exactly once, when its last owner goes away.
///
/// swift-system's `FileDescriptor` does not own; this one does, so a region's backing, a
/// socket or an eventfd cannot leak or be closed twice. A class so regions, slots and savers
/// can share it. I/O goes through swift-system, which retries calls interrupted by signals.
package final class OwnedFileDescriptor: Sendable {
    private let value: Atomic<CInt>

    package init(taking rawValue: CInt) { value = Atomic(rawValue) }

    /// Takes ownership of a swift-system descriptor.
    package convenience init(taking descriptor: FileDescriptor) { self.init(taking: descriptor.rawValue) }

    deinit {
        let fd = value.load(ordering: .relaxed)
        if fd >= 0 { close(fd) }
    }

    /// The descriptor number; -1 once released.
    package var rawValue: CInt { value.load(ordering: .relaxed) }

    /// The descriptor for swift-system's calls (not owning: this object still closes it).
    package var descriptor: FileDescriptor { FileDescriptor(rawValue: rawValue) }

    /// Gives up ownership without closing, e.g. to keep the descriptor across exec.
    package func release() -> CInt { value.exchange(-1, ordering: .relaxed) }

    /// Opens `path` and owns the result.
    package static func open(
        _ path: String, _ mode: FileDescriptor.AccessMode, options: FileDescriptor.OpenOptions = [],
        permissions: FilePermissions? = nil
    ) throws(SystemError) -> OwnedFileDescriptor {
        do {
            return OwnedFileDescriptor(taking: try FileDescriptor.open(
                FilePath(path), mode, options: options.union(.closeOnExec), permissions: permissions))
        } catch { throw SystemError("open", on: path, error as? Errno ?? .ioError) }
    }

    /// Writes every byte of `bytes` at the current offset.
    package func writeAll(_ bytes: [UInt8], subject: String) throws(SystemError) {
        do { _ = try descriptor.writeAll(bytes) } catch { throw SystemError("write", on: subject, error as? Errno ?? .ioError) }
    }

    /// Writes every byte of `bytes` at `offset`.
    package func writeAll(_ bytes: [UInt8], at offset: UInt64, subject: String) throws(SystemError) {
        do { _ = try descriptor.writeAll(toAbsoluteOffset: Int64(offset), bytes) } catch {
            throw SystemError("pwrite", on: subject, error as? Errno ?? .ioError)
        }
    }

    /// Reads the whole file from offset 0, refusing one larger than `limit` bytes.
    package func readWholeFile(limit: Int, subject: String) throws(SystemError) -> [UInt8] {
        do {
            let size = try descriptor.seek(offset: 0, from: .end)
            guard size <= Int64(limit) else { throw Errno.fileTooLarge }
            // SAFETY: the read fills at most `size` bytes of the fresh buffer and reports how many.
            return try unsafe [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, count in
                var done = 0
                while done < buffer.count {
                    let read = try unsafe descriptor.read(
                        fromAbsoluteOffset: Int64(done), into: UnsafeMutableRawBufferPointer(unsafe UnsafeMutableBufferPointer(rebasing: buffer[done...])))
                    if read == 0 { break }
                    done += read
                }
                count = done
            }
        } catch { throw SystemError("read", on: subject, error as? Errno ?? .ioError) }
    }

    /// A small file's whole contents, read until its end: /proc and cgroup files report no size
    /// for `readWholeFile` to read up to.
    package static func readToEnd(_ path: String) throws(SystemError) -> [UInt8] {
        let file = try OwnedFileDescriptor.open(path, .readOnly)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try file.descriptor.read(into: &buffer)
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
        }
    }

    /// fsync(2).
    package func sync(subject: String) throws(SystemError) {
        guard fsync(rawValue) == 0 else { throw .last("fsync", on: subject) }
    }

    /// Sets or clears FD_CLOEXEC; false if the descriptor is not open.
    @discardableResult
    package func setCloseOnExec(_ closeOnExec: Bool) -> Bool { ProcessImage.setCloseOnExec(rawValue, closeOnExec) }
}

import CLinux
import Glibc
import SystemPackage

/// A non-blocking Unix stream socket listening at a path with mode 0600, for an event loop
/// (vsock's host side, as Firecracker's `uds_path`). The path is unlinked when this goes.
package final class UnixStreamListener: Sendable {
    private let descriptor: OwnedFileDescriptor
    package let path: String

    /// Listens at `path`. A stale socket already there (nothing accepts on it: an earlier run's)
    /// is replaced; a socket another process listens on, any other kind of file, and a path whose
    /// directory is missing are refused.
    package init(path: String, backlog: CInt = 128) throws(SystemError) {
        if let existing = FileStatus(path: path, followingLinks: false) {
            guard existing.kind == .socket else { throw SystemError(refusing: path, because: "it exists and is not a socket", .fileExists) }
            if (try? StreamSocket.connect(unixPath: path)) != nil {
                throw SystemError(refusing: path, because: "another process listens on it", .addressInUse)
            }
            guard unsafe unlink(path) == 0 else { throw .last("unlink (stale socket)", on: path) }
        }
        descriptor = try UnixSocketPath.bind(path)
        self.path = path
        guard unsafe chmod(path, 0o600) == 0 else {
            let error = SystemError.last("chmod", on: path)
            _ = unsafe unlink(path)
            throw error
        }
        guard listen(descriptor.rawValue, backlog) == 0 else {
            let error = SystemError.last("listen", on: path)
            _ = unsafe unlink(path)
            throw error
        }
    }

    /// Adopts a socket already listening at `path` (a live update's, kept open across exec, so no
    /// client is refused while the VMM changes): nothing is unlinked or bound. Refuses a
    /// descriptor that is not a socket.
    package init(adopting descriptor: OwnedFileDescriptor, path: String) throws(SystemError) {
        guard let status = FileStatus(descriptor: descriptor.rawValue) else { throw .last("fstat (inherited listener)", on: path) }
        guard status.kind == .socket else {
            throw SystemError(refusing: path, because: "the inherited descriptor \(descriptor.rawValue) is not a socket", .notSocket)
        }
        let fd = descriptor.rawValue
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.descriptor = descriptor
        self.path = path
    }

    deinit { _ = unsafe unlink(path) }

    /// The descriptor, for epoll (readable: a connection waits).
    package var rawValue: CInt { descriptor.rawValue }

    /// The next waiting connection, non-blocking and close-on-exec; nil when none waits.
    package func accept() -> NonBlockingStream? {
        while true {
            let fd = clinux_accept_cloexec(descriptor.rawValue, nil, nil)
            if fd >= 0 { return NonBlockingStream(taking: OwnedFileDescriptor(taking: fd)) }
            switch errno {
            case EINTR, ECONNABORTED: continue
            default: return nil  // EAGAIN, or out of descriptors: the next readiness tries again
            }
        }
    }
}

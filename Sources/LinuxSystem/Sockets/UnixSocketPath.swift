import CLinux
import Glibc

/// Unix stream sockets bound to a path in the file system (the control API's).
package enum UnixSocketPath {
    /// A close-on-exec, non-blocking Unix stream socket bound to `path`, not yet listening: the
    /// control server knows its descriptor, so a live update can hand it to the next VMM. (The
    /// caller binds inside a private directory and sets the mode before publishing the path.)
    package static func bind(_ path: String) throws(SystemError) -> OwnedFileDescriptor {
        // SAFETY: the path is copied into the socket address during the call.
        let fd = unsafe clinux_unix_socket_bind(path)
        guard fd >= 0 else { throw .last("bind", on: path) }
        return OwnedFileDescriptor(taking: fd)
    }
}

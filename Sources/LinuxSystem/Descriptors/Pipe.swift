import CLinux
import Glibc

/// A pipe whose ends are close-on-exec from the moment they exist (pipe2 with O_CLOEXEC): in a
/// multithreaded process a separate fcntl leaves a window in which another thread's exec or
/// spawn inherits them.
package struct Pipe: Sendable {
    package let readEnd: OwnedFileDescriptor
    package let writeEnd: OwnedFileDescriptor

    package init() throws(SystemError) {
        var ends: [CInt] = [-1, -1]
        // SAFETY: pipe2 writes exactly two descriptors into the two-element local array.
        guard unsafe ends.withUnsafeMutableBufferPointer({ unsafe clinux_pipe_cloexec($0.baseAddress!) }) == 0 else {
            throw .last("pipe2", on: "a pipe")
        }
        readEnd = OwnedFileDescriptor(taking: ends[0])
        writeEnd = OwnedFileDescriptor(taking: ends[1])
    }
}

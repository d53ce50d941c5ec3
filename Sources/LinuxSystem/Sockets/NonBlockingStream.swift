import CLinux
import Glibc
import SystemPackage

/// A connected, non-blocking Unix stream socket an event loop serves (vsock's host side): every
/// call returns at once, saying how much moved or that the socket would block. Closed on deinit;
/// writes never raise SIGPIPE.
package final class NonBlockingStream: Sendable {
    /// What one receive or send did.
    package enum Transfer: Sendable, Equatable {
        /// This many bytes moved (at least one).
        case moved(Int)
        /// Nothing can move now; epoll says when it can.
        case wouldBlock
        /// The peer closed its side (receive), or is gone (send: EPIPE, ECONNRESET).
        case closed
        /// Any other failure.
        case failed(Errno)
    }

    private let descriptor: OwnedFileDescriptor

    /// Owns `descriptor`, switching it to non-blocking.
    package init(taking descriptor: OwnedFileDescriptor) {
        self.descriptor = descriptor
        let fd = descriptor.rawValue
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// Connects to the Unix socket listening at `path` without waiting: a listener whose backlog
    /// is full fails with EAGAIN instead of holding the caller (an event loop) up.
    package static func connect(unixPath path: String) throws(SystemError) -> NonBlockingStream {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity, !bytes.contains(0) else { throw SystemError("connect", on: path, .fileNameTooLong) }
        // SAFETY: the path and its terminating zero fit sun_path, checked above.
        unsafe withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { unsafe raw[index] = byte }
            unsafe raw[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw .last("socket", on: path) }
        let owned = OwnedFileDescriptor(taking: fd)
        while true {
            // SAFETY: connect reads the local sockaddr_un of the size given.
            let result = unsafe withUnsafePointer(to: &address) {
                unsafe $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { unsafe Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if result == 0 { return NonBlockingStream(taking: owned) }
            if errno != EINTR { throw .last("connect", on: path) }
        }
    }

    /// The descriptor, for epoll.
    package var rawValue: CInt { descriptor.rawValue }

    /// Receives up to `count` bytes into `buffer[offset...]`.
    package func receive(into buffer: inout [UInt8], at offset: Int, count: Int) -> Transfer {
        precondition(offset >= 0 && count > 0 && offset + count <= buffer.count, "receive outside the buffer")
        while true {
            // SAFETY: recv writes at most `count` bytes into the array from `offset`, during the call.
            let received = unsafe buffer.withUnsafeMutableBytes { raw in
                unsafe recv(descriptor.rawValue, raw.baseAddress! + offset, count, 0)
            }
            if received > 0 { return .moved(received) }
            if received == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case ECONNRESET, EPIPE: return .closed
            default: return .failed(Errno(rawValue: errno))
            }
        }
    }

    /// Sends up to `count` bytes of `buffer[offset...]`.
    package func send(_ buffer: [UInt8], from offset: Int, count: Int) -> Transfer {
        precondition(offset >= 0 && count > 0 && offset + count <= buffer.count, "send outside the buffer")
        while true {
            // SAFETY: send reads at most `count` bytes of the array from `offset`, during the call.
            let sent = unsafe buffer.withUnsafeBytes { raw in
                unsafe Glibc.send(descriptor.rawValue, raw.baseAddress! + offset, count, CInt(MSG_NOSIGNAL))
            }
            if sent > 0 { return .moved(sent) }
            switch errno {
            case EINTR: continue
            case EAGAIN: return .wouldBlock
            case ECONNRESET, EPIPE: return .closed
            default: return .failed(Errno(rawValue: errno))
            }
        }
    }

    /// Ends the direction(s) given: the peer sees end of stream after `writing`, and its
    /// writes fail after `reading`.
    package func shutdown(reading: Bool, writing: Bool) {
        let how: CInt = reading && writing ? CInt(SHUT_RDWR) : reading ? CInt(SHUT_RD) : CInt(SHUT_WR)
        guard reading || writing else { return }
        _ = Glibc.shutdown(descriptor.rawValue, how)
    }
}

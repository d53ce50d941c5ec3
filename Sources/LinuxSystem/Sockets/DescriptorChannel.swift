import CLinux
import Glibc

/// One end of a connected Unix stream socket pair that carries whole messages, each with open
/// descriptors attached (SCM_RIGHTS): how a VMM hands guest memory, devices and its control
/// socket to the VMM replacing it while both run. A message is a little-endian u32 length and
/// that many bytes; its descriptors ride on the first bytes. Received descriptors are
/// close-on-exec and owned by the caller.
package final class DescriptorChannel: Sendable {
    private let socket: OwnedFileDescriptor
    /// What the other end is, for messages ("the new VMM").
    package let peer: String

    /// The largest message and the most descriptors one message may carry.
    package static let maximumMessageBytes = 16 << 20
    package static let maximumDescriptors = 250

    /// Owns an already connected socket.
    package init(taking socket: OwnedFileDescriptor, peer: String) {
        self.socket = socket
        self.peer = peer
    }

    /// A connected pair: this process's end, and the raw descriptor of the other (close-on-exec;
    /// the caller hands it to a child and closes it).
    package static func pair(peer: String) throws(SystemError) -> (DescriptorChannel, OwnedFileDescriptor) {
        var ends: [CInt] = [-1, -1]
        // SAFETY: socketpair writes two descriptors into the two-element array.
        guard unsafe clinux_stream_socketpair(&ends) == 0 else { throw .last("socketpair", on: peer) }
        return (DescriptorChannel(taking: OwnedFileDescriptor(taking: ends[0]), peer: peer), OwnedFileDescriptor(taking: ends[1]))
    }

    /// The socket's descriptor (to hand it to a child process).
    package var rawValue: CInt { socket.rawValue }

    /// Sends `payload` with `descriptors` attached (they stay open here), within
    /// `timeoutMilliseconds`: a peer that stopped reading (stopped, not dead) cannot hold the
    /// sender for ever (a VMM paused for a transfer-mode update waits on this).
    package func send(_ payload: [UInt8], descriptors: [CInt] = [], timeoutMilliseconds: Int = 60_000) throws(SystemError) {
        guard payload.count <= Self.maximumMessageBytes, descriptors.count <= Self.maximumDescriptors else {
            throw .failed("send", on: peer, .messageTooLong)
        }
        let length = UInt32(payload.count)
        let frame = [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)] + payload
        let deadline = MonotonicClock.nanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        var offset = 0
        while offset < frame.count {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else { throw .failed("sendmsg", on: peer, .timedOut) }
            SocketOptions.set(socket.rawValue, SOL_SOCKET, SO_SNDTIMEO, milliseconds: Int(max(1, (deadline - now) / 1_000_000)))
            let attached = offset == 0 ? descriptors : []
            // SAFETY: the call reads at most the frame's remaining bytes and the descriptors' array, during the call.
            let sent = unsafe frame.withUnsafeBytes { bytes in
                unsafe attached.withUnsafeBufferPointer { fds in
                    unsafe clinux_send_with_descriptors(socket.rawValue, bytes.baseAddress! + offset, bytes.count - offset, fds.baseAddress, CInt(fds.count))
                }
            }
            // A peer that has gone (EPIPE, or a reset) closed the connection, whichever way the kernel says it.
            if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }  // the deadline decides
            guard sent > 0 else { throw sent == 0 || errno == EPIPE || errno == ECONNRESET ? .closed(peer: peer) : .last("sendmsg", on: peer) }
            offset += sent
        }
    }

    /// Receives one message and the descriptors that came with it, waiting at most
    /// `timeoutMilliseconds`; `.closed` if the other end closed first.
    package func receive(timeoutMilliseconds: Int) throws(SystemError) -> (payload: [UInt8], descriptors: [OwnedFileDescriptor]) {
        let deadline = MonotonicClock.nanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        var descriptors: [OwnedFileDescriptor] = []
        let header = try read(4, into: &descriptors, until: deadline)
        let length = Int(header[0]) | Int(header[1]) << 8 | Int(header[2]) << 16 | Int(header[3]) << 24
        guard length <= Self.maximumMessageBytes else { throw .failed("recvmsg", on: peer, .messageTooLong) }
        let payload = try read(length, into: &descriptors, until: deadline)
        return (payload, descriptors)
    }

    /// Reads exactly `count` bytes, collecting any descriptors that arrive with them.
    private func read(_ count: Int, into descriptors: inout [OwnedFileDescriptor], until deadline: UInt64) throws(SystemError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        var passed = [CInt](repeating: -1, count: Self.maximumDescriptors)
        while filled < count {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else { throw .failed("recvmsg", on: peer, .timedOut) }
            guard Poll.isReadable(socket.rawValue, milliseconds: CInt(min((deadline - now) / 1_000_000 + 1, 60_000))) else { continue }
            var arrived: CInt = 0
            // SAFETY: the call writes at most the remaining bytes and `passed.count` descriptors, during the call.
            let received = unsafe bytes.withUnsafeMutableBytes { buffer in
                unsafe passed.withUnsafeMutableBufferPointer { fds in
                    unsafe clinux_receive_with_descriptors(
                        socket.rawValue, buffer.baseAddress! + filled, buffer.count - filled, fds.baseAddress!, CInt(fds.count), &arrived)
                }
            }
            // A peer that exits with our message unread resets the connection: it closed all the same.
            guard received >= 0 else { throw errno == ECONNRESET ? .closed(peer: peer) : .last("recvmsg", on: peer) }
            descriptors += passed[0..<Int(arrived)].map { OwnedFileDescriptor(taking: $0) }
            guard received > 0 else { throw .closed(peer: peer) }
            filled += received
        }
        return bytes
    }
}

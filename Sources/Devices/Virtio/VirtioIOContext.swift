import LinuxSystem

/// What a back-end may ask of the device I/O thread besides serving its queues: watch host
/// descriptors of its own (vsock's sockets) in the thread's epoll, and wake one of its queues
/// when it has something for the guest that no guest notification will bring.
///
/// Tokens are the back-end's own (32 bits); the thread hands each ready one back through
/// `VirtioBackend.serveHostEvent`. epoll_ctl is thread-safe, so calls come from whichever
/// thread holds the device's lock.
package final class VirtioIOContext: Sendable {
    private let epoll: Epoll
    private let deviceIndex: Int
    private let queueNotifiers: [EventNotifier]
    /// Marks a token as a back-end's, apart from queue tokens and the stop token.
    static let hostEventFlag: UInt64 = 1 << 62

    init(epoll: Epoll, deviceIndex: Int, queueNotifiers: [EventNotifier]) {
        self.epoll = epoll
        self.deviceIndex = deviceIndex
        self.queueNotifiers = queueNotifiers
    }

    private func encode(_ token: UInt32) -> UInt64 { Self.hostEventFlag | UInt64(deviceIndex) << 32 | UInt64(token) }

    /// Starts watching `fd` for `interest`; `token` comes back when it is ready.
    package func watch(_ fd: CInt, interest: Epoll.Interest, token: UInt32) throws(SystemError) {
        try epoll.add(fd, interest: interest, token: encode(token))
    }

    /// Changes what a watched `fd` waits for.
    package func change(_ fd: CInt, interest: Epoll.Interest, token: UInt32) throws(SystemError) {
        try epoll.modify(fd, interest: interest, token: encode(token))
    }

    /// Stops watching `fd` (before it is closed, or while nothing on it is wanted: epoll reports
    /// hang-ups even with no interest).
    package func unwatch(_ fd: CInt) { epoll.remove(fd) }

    /// Has the I/O thread serve queue `index` soon, as if the guest had notified it.
    package func wake(queue index: Int) {
        if index >= 0 && index < queueNotifiers.count { queueNotifiers[index].signal() }
    }
}

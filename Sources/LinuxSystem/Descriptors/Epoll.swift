import CLinux
import Glibc

/// An epoll instance: one thread waits for many descriptors (device queues, taps, sockets,
/// timers). Each registered descriptor carries a 64-bit token that comes back when it is ready.
package final class Epoll: Sendable {
    /// What a registration waits for.
    package struct Interest: OptionSet, Sendable {
        package let rawValue: UInt32
        package init(rawValue: UInt32) { self.rawValue = rawValue }
        package static let readable = Interest(rawValue: CLINUX_EPOLLIN)
        package static let writable = Interest(rawValue: CLINUX_EPOLLOUT)
    }

    /// A ready descriptor's token and what happened to it.
    package struct Event: Sendable, Equatable {
        package var token: UInt64
        package var readable: Bool
        package var writable: Bool
        /// An error or hang-up: the descriptor's owner should read it to learn which.
        package var failed: Bool
    }

    /// Room for the events one wait returns, made once and reused by every wait, so an
    /// event loop allocates nothing per iteration.
    package struct Events: Sendable {
        fileprivate var raw: [clinux_epoll_event]
        /// How many the last wait returned.
        package fileprivate(set) var count = 0

        /// Room for `capacity` events (at most 64 are returned by one wait).
        package init(capacity: Int = 64) { raw = [clinux_epoll_event](repeating: clinux_epoll_event(), count: max(1, min(capacity, 64))) }

        package subscript(index: Int) -> Event {
            precondition(index >= 0 && index < count, "event \(index) of \(count)")
            let entry = raw[index]
            return Event(
                token: entry.data, readable: entry.events & CLINUX_EPOLLIN != 0, writable: entry.events & CLINUX_EPOLLOUT != 0,
                failed: entry.events & (CLINUX_EPOLLERR | CLINUX_EPOLLHUP) != 0)
        }
    }

    private let descriptor: OwnedFileDescriptor

    package init() throws(SystemError) {
        let fd = clinux_epoll_create()
        guard fd >= 0 else { throw .last("epoll_create1", on: "an event loop") }
        descriptor = OwnedFileDescriptor(taking: fd)
    }

    package var rawValue: CInt { descriptor.rawValue }

    /// Starts watching `fd` for `interest`, reporting `token`.
    package func add(_ fd: CInt, interest: Interest, token: UInt64) throws(SystemError) {
        guard clinux_epoll_ctl(descriptor.rawValue, CLINUX_EPOLL_CTL_ADD, fd, interest.rawValue, token) == 0 else {
            throw .last("epoll_ctl (add)", on: "descriptor \(fd)")
        }
    }

    /// Changes what `fd` is watched for.
    package func modify(_ fd: CInt, interest: Interest, token: UInt64) throws(SystemError) {
        guard clinux_epoll_ctl(descriptor.rawValue, CLINUX_EPOLL_CTL_MOD, fd, interest.rawValue, token) == 0 else {
            throw .last("epoll_ctl (modify)", on: "descriptor \(fd)")
        }
    }

    /// Stops watching `fd`.
    package func remove(_ fd: CInt) {
        _ = clinux_epoll_ctl(descriptor.rawValue, CLINUX_EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `milliseconds` (-1: forever) and puts the ready descriptors in `events`
    /// (`events.count` of them). A signal ends the wait early with none.
    package func wait(into events: inout Events, milliseconds: CInt) throws(SystemError) {
        // SAFETY: epoll_wait writes at most `raw.count` events into the reused array.
        let count = unsafe events.raw.withUnsafeMutableBufferPointer {
            unsafe clinux_epoll_wait(descriptor.rawValue, $0.baseAddress, CInt($0.count), milliseconds)
        }
        events.count = max(0, Int(count))
        if count < 0 && errno != EINTR { throw .last("epoll_wait", on: "an event loop") }
    }
}

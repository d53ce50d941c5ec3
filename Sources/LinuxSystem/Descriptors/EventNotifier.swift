import CLinux
import Glibc

/// An eventfd one thread signals and another polls beside its other descriptors: a stop
/// request next to a userfaultfd, a wake-up next to a viewer's socket. Signalling never
/// blocks, so a slow waiter cannot hold the signaller up.
package final class EventNotifier: Sendable {
    private let descriptor: OwnedFileDescriptor

    /// A non-blocking, close-on-exec eventfd with its counter at zero.
    package init() throws(SystemError) {
        let fd = clinux_eventfd(0, O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .last("eventfd", on: "an event notifier") }
        descriptor = OwnedFileDescriptor(taking: fd)
    }

    /// The descriptor, for poll(2) or epoll.
    package var rawValue: CInt { descriptor.rawValue }

    /// Adds one to the counter: the descriptor polls readable until `drain`.
    package func signal() {
        var one: UInt64 = 1
        // SAFETY: eventfd takes exactly one 8-byte counter increment from a local.
        _ = unsafe write(descriptor.rawValue, &one, 8)
    }

    /// Resets the counter after a wake-up (the descriptor is non-blocking).
    package func drain() {
        var count: UInt64 = 0
        // SAFETY: read writes the 8-byte counter into a local.
        _ = unsafe read(descriptor.rawValue, &count, 8)
    }

    /// True while the counter is non-zero (signalled and not drained).
    package var isSignaled: Bool { Poll.isReadable(descriptor.rawValue, milliseconds: 0) }

    /// Blocks until signalled (returns at once if it is); does not drain.
    package func wait() {
        while !Poll.isReadable(descriptor.rawValue, milliseconds: -1) {}
    }
}

import CLinux
import Glibc
import GuestMemory
import SystemPackage

/// A signal that, once given, stays given: an eventfd that is written and never read, so
/// poll(2) sees it readable from then on. The fault handler polls it next to the userfaultfd;
/// `waitUntilFilled` blocks on another.
final class Latch: Sendable {
    private let descriptor: OwnedFileDescriptor

    init() throws(PagingError) {
        let fd = clinux_eventfd(0, O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .systemCall(name: "eventfd", Errno(rawValue: errno)) }
        descriptor = OwnedFileDescriptor(taking: fd)
    }

    /// The descriptor, for poll(2).
    var rawValue: CInt { descriptor.rawValue }

    /// Gives the signal; later calls change nothing.
    func signal() {
        var one: UInt64 = 1
        // SAFETY: eventfd takes exactly one 8-byte counter increment from a local.
        _ = unsafe write(descriptor.rawValue, &one, MemoryLayout<UInt64>.size)
    }

    /// True once `signal` was called.
    var isSignaled: Bool { poll(milliseconds: 0) }

    /// Blocks until `signal` is called (returns at once if it was).
    func wait() {
        while !poll(milliseconds: -1) {}
    }

    private func poll(milliseconds: CInt) -> Bool {
        var entry = pollfd(fd: descriptor.rawValue, events: Int16(POLLIN), revents: 0)
        // SAFETY: one pollfd, a local.
        return unsafe Glibc.poll(&entry, 1, milliseconds) == 1
    }
}

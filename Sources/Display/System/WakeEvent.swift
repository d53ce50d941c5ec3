import CLinux
import Glibc
import GuestMemory
import SystemPackage

/// An eventfd a client thread polls beside its socket: the change poller signals it when tiles
/// the client waits for have changed. Signalling never blocks, so a slow client cannot hold
/// the poller up.
final class WakeEvent: Sendable {
    private let descriptor: OwnedFileDescriptor

    init() throws(DisplayError) {
        let fd = clinux_eventfd(0, O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .socket(peer: "eventfd", call: "eventfd", Errno(rawValue: errno)) }
        descriptor = OwnedFileDescriptor(taking: fd)
    }

    var rawValue: CInt { descriptor.rawValue }

    /// Wakes the thread polling this event (adds 1 to the counter).
    func signal() {
        var one: UInt64 = 1
        // SAFETY: write reads the 8-byte counter increment from a local.
        _ = unsafe Glibc.write(descriptor.rawValue, &one, 8)
    }

    /// Resets the counter after a wake-up.
    func drain() {
        var count: UInt64 = 0
        // SAFETY: read writes the 8-byte counter into a local; the descriptor is non-blocking.
        _ = unsafe Glibc.read(descriptor.rawValue, &count, 8)
    }
}

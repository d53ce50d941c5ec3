import Glibc
import Synchronization

/// A file descriptor this process owns: closed exactly once, when its last owner goes away.
///
/// swift-system's `FileDescriptor` does not own; this one does, so a region's backing
/// cannot leak or be closed twice. A class so regions, slots and savers can share it.
package final class OwnedFileDescriptor: Sendable {
    private let value: Atomic<CInt>

    package init(taking rawValue: CInt) { value = Atomic(rawValue) }

    deinit {
        let fd = value.load(ordering: .relaxed)
        if fd >= 0 { close(fd) }
    }

    /// The descriptor number; -1 once released.
    package var rawValue: CInt { value.load(ordering: .relaxed) }

    /// Gives up ownership without closing, e.g. to keep the descriptor across exec.
    package func release() -> CInt { value.exchange(-1, ordering: .relaxed) }
}

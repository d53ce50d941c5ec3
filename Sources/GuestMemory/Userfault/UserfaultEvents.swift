import CLinux
import Glibc
import SystemPackage

/// One message read from a userfaultfd.
package enum UserfaultEvent: Sendable, Equatable {
    /// A thread touched the missing page at host address `address` (page-aligned); `write` if it was a store.
    case pageFault(address: UInt64, write: Bool)
    /// An event Engram did not ask for (fork, remap, remove, unmap), by its UFFD_EVENT_* code.
    case other(code: UInt8)
}

/// Room for a batch of userfaultfd messages, allocated once so the fault loop allocates nothing.
///
/// Owned by the one thread that reads faults; not shared.
@safe
package final class UserfaultEventBuffer {
    /// Messages one read can return.
    package let capacity: Int
    /// Messages the last read returned.
    package fileprivate(set) var count = 0
    private let storage: UnsafeMutablePointer<uffd_msg>

    package init(capacity: Int) {
        precondition(capacity > 0, "a message buffer holds at least one message")
        self.capacity = capacity
        unsafe storage = UnsafeMutablePointer<uffd_msg>.allocate(capacity: capacity)
        unsafe storage.initialize(repeating: uffd_msg(), count: capacity)
    }

    deinit {
        // SAFETY: allocated in init with this capacity; no read is in flight once the owner lets go.
        unsafe storage.deallocate()
    }

    /// Message `index` of the last read (`index < count`).
    package subscript(index: Int) -> UserfaultEvent {
        precondition(index >= 0 && index < count, "message \(index) of \(count)")
        // SAFETY: index < count <= capacity, and the first `count` messages were filled by read(2).
        let message = unsafe storage[index]
        guard message.event == UInt8(UFFD_EVENT_PAGEFAULT) else { return .other(code: message.event) }
        // SAFETY: the event code says the kernel wrote the union's pagefault member.
        let fault = unsafe message.arg.pagefault
        return .pageFault(address: fault.address, write: fault.flags & UInt64(UFFD_PAGEFAULT_FLAG_WRITE) != 0)
    }

    /// read(2) of up to `capacity` messages from `fd`; 0 when none is pending (EAGAIN).
    fileprivate func read(from fd: CInt) throws(UserfaultError) -> Int {
        let size = MemoryLayout<uffd_msg>.stride
        while true {
            // SAFETY: reads at most capacity * stride bytes into the storage allocated for exactly that.
            let result = unsafe Glibc.read(fd, storage, capacity * size)
            if result >= 0 {
                count = result / size
                return count
            }
            let error = Errno(rawValue: errno)
            if error == .interrupted { continue }
            count = 0
            if error == .resourceTemporarilyUnavailable { return 0 }
            throw .read(error)
        }
    }
}

extension UserfaultDescriptor {
    /// Reads the pending fault messages into `buffer` without blocking (poll `rawValue` first);
    /// returns how many were read, 0 if none.
    package func readEvents(into buffer: UserfaultEventBuffer) throws(UserfaultError) -> Int {
        let fd = rawValue
        guard fd >= 0 else { throw .closed(name: "read") }
        return try buffer.read(from: fd)
    }
}

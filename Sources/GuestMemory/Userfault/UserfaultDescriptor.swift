import CLinux
import Glibc
import Synchronization
import SystemPackage

/// A userfaultfd: the kernel parks a thread that touches a missing page of a registered range
/// and reports the fault here; UFFDIO_COPY or UFFDIO_ZEROPAGE then installs the page and wakes it.
///
/// Owns the descriptor. Closing it (or unregistering a range) wakes every parked thread, which
/// then sees whatever the backing holds — zeros for a fresh memfd. A pager that cannot serve a
/// page must not let that happen, so `keepOpenUntilExit()` makes `close()` and deinit leave the
/// descriptor open: parked threads stay parked until the process ends.
package final class UserfaultDescriptor: Sendable {
    /// The descriptor; -1 once closed.
    private let descriptor: Atomic<CInt>
    private let keepsOpen = Atomic<Bool>(false)
    /// The features the kernel supports, as UFFDIO_API reported them (a superset of those asked for).
    package let features: UserfaultFeatures

    /// Opens a non-blocking userfaultfd for this process and completes the UFFDIO_API handshake
    /// asking for `requested`; fails unless the kernel grants all of them.
    package init(features requested: UserfaultFeatures) throws(UserfaultError) {
        let fd = try Self.openDescriptor()
        var api = uffdio_api(api: UInt64(UFFD_API), features: requested.rawValue, ioctls: 0)
        // SAFETY: `api` is a local uffdio_api the kernel reads and fills within its size.
        let result = unsafe withUnsafeMutableBytes(of: &api) { bytes in
            Self.retryingEINTR { unsafe clinux_ioctl_ptr(fd, CLINUX_UFFDIO_API, bytes.baseAddress) }
        }
        guard result == 0 else {
            Glibc.close(fd)
            // A refused handshake reports nothing; a second descriptor asking for nothing learns what the kernel has.
            throw .missingFeatures(requested: requested, granted: Self.supportedFeatures() ?? [])
        }
        let granted = UserfaultFeatures(rawValue: api.features)
        guard granted.isSuperset(of: requested) else {
            Glibc.close(fd)
            throw .missingFeatures(requested: requested, granted: granted)
        }
        descriptor = Atomic(fd)
        features = granted
    }

    deinit { close() }

    /// The descriptor number, for poll(2); -1 once closed.
    package var rawValue: CInt { descriptor.load(ordering: .acquiring) }

    /// Registers `[start, start + length)` (page-aligned, mapped) for MISSING faults and returns
    /// the range ioctls the kernel allows there (hugetlbfs, for one, has no UFFDIO_ZEROPAGE).
    package func registerMissing(start: UInt64, length: UInt64) throws(UserfaultError) -> UserfaultRangeOperations {
        var request = uffdio_register(
            range: uffdio_range(start: start, len: length), mode: UInt64(UFFDIO_REGISTER_MODE_MISSING), ioctls: 0)
        try control(CLINUX_UFFDIO_REGISTER, "UFFDIO_REGISTER", start: start, length: length, &request)
        return UserfaultRangeOperations(rawValue: request.ioctls)
    }

    /// Unregisters `[start, start + length)`; the kernel wakes any thread parked in it.
    package func unregister(start: UInt64, length: UInt64) throws(UserfaultError) {
        var range = uffdio_range(start: start, len: length)
        try control(CLINUX_UFFDIO_UNREGISTER, "UFFDIO_UNREGISTER", start: start, length: length, &range)
    }

    /// Wakes the threads parked on `[start, start + length)`, e.g. after finding their page already present.
    package func wake(start: UInt64, length: UInt64) throws(UserfaultError) {
        var range = uffdio_range(start: start, len: length)
        try control(CLINUX_UFFDIO_WAKE, "UFFDIO_WAKE", start: start, length: length, &range)
    }

    /// Makes `close()` and deinit leave the descriptor open for the rest of the process, so threads
    /// parked on pages that could not be served never resume on wrong (zero) memory.
    package func keepOpenUntilExit() { keepsOpen.store(true, ordering: .releasing) }

    /// Closes the descriptor now (unregistering every range and waking parked threads), unless
    /// `keepOpenUntilExit()` was called. Only call it when no other thread is using it.
    package func close() {
        guard !keepsOpen.load(ordering: .acquiring) else { return }
        let fd = descriptor.exchange(-1, ordering: .acquiringAndReleasing)
        if fd >= 0 { Glibc.close(fd) }
    }

    /// One ioctl on a plain kernel struct, EINTR retried; other failures name the call and the range.
    func control<T>(
        _ request: UInt, _ name: StaticString, start: UInt64, length: UInt64, _ argument: inout T
    ) throws(UserfaultError) {
        let fd = rawValue
        guard fd >= 0 else { throw .closed(name: "\(name)") }
        // SAFETY: `argument` is the plain uffdio_* struct `request` reads and fills within its size.
        let result = unsafe withUnsafeMutableBytes(of: &argument) { bytes in
            Self.retryingEINTR { unsafe clinux_ioctl_ptr(fd, request, bytes.baseAddress) }
        }
        guard result == 0 else { throw .ioctl(name: "\(name)", start: start, length: length, Errno(rawValue: errno)) }
    }

    /// Runs `call` until it is not interrupted by a signal.
    static func retryingEINTR(_ call: () -> CInt) -> CInt {
        while true {
            let result = call()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// userfaultfd(2), falling back to /dev/userfaultfd (Linux 6.1+) when the system call is refused.
    ///
    /// Never UFFD_USER_MODE_ONLY: KVM touches guest memory from kernel mode (get_user_pages on a
    /// vCPU thread), and those faults must reach the handler too.
    private static func openDescriptor() throws(UserfaultError) -> CInt {
        let flags = O_CLOEXEC | O_NONBLOCK
        let fd = clinux_userfaultfd(flags)
        if fd >= 0 { return fd }
        let error = Errno(rawValue: errno)
        // EPERM: vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE; the device's file mode decides instead.
        guard error == .notPermitted else { throw .unavailable(error, device: nil) }
        let device = unsafe open("/dev/userfaultfd", O_RDWR | O_CLOEXEC)
        guard device >= 0 else { throw .unavailable(error, device: Errno(rawValue: errno)) }
        defer { Glibc.close(device) }
        let created = retryingEINTR { clinux_ioctl_int(device, CLINUX_USERFAULTFD_IOC_NEW, UInt(flags)) }
        guard created >= 0 else { throw .unavailable(error, device: Errno(rawValue: errno)) }
        return created
    }

    /// The features a fresh descriptor's handshake reports when asking for none; nil if that fails too.
    private static func supportedFeatures() -> UserfaultFeatures? {
        guard let fd = try? openDescriptor() else { return nil }
        defer { Glibc.close(fd) }
        var api = uffdio_api(api: UInt64(UFFD_API), features: 0, ioctls: 0)
        // SAFETY: `api` is a local uffdio_api the kernel reads and fills within its size.
        let result = unsafe withUnsafeMutableBytes(of: &api) { bytes in
            retryingEINTR { unsafe clinux_ioctl_ptr(fd, CLINUX_UFFDIO_API, bytes.baseAddress) }
        }
        return result == 0 ? UserfaultFeatures(rawValue: api.features) : nil
    }
}

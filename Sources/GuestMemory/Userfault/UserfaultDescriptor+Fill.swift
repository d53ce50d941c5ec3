import CLinux
import Glibc
import SystemPackage

/// Installing pages: UFFDIO_COPY and UFFDIO_ZEROPAGE, with the kernel's partial results handled.
extension UserfaultDescriptor {
    /// Installs the pages of `source` at host address `start` (both page-aligned, whole pages) and
    /// wakes the threads parked on them, unless `wake` is false (UFFDIO_COPY_MODE_DONTWAKE).
    ///
    /// Stops at the first page that is already present (EEXIST) and returns the bytes installed
    /// before it: `source.count` when every page was installed, less when the page at
    /// `start + result` was already there. A partial copy and EAGAIN (the mapping is changing)
    /// are retried here, so the caller only sees "installed up to here".
    package func copy(to start: UInt64, from source: UnsafeRawBufferPointer, wake: Bool = true) throws(UserfaultError) -> UInt64 {
        let total = UInt64(source.count)
        guard total > 0 else { return 0 }
        // Only the address is taken: the kernel reads `source` during each call, and the caller keeps it alive.
        let sourceAddress = UInt64(UInt(bitPattern: source.baseAddress))
        var done: UInt64 = 0
        while done < total {
            var request = uffdio_copy(
                dst: start + done, src: sourceAddress + done, len: total - done,
                mode: wake ? 0 : UInt64(UFFDIO_COPY_MODE_DONTWAKE), copy: 0)
            guard let failure = try fill(CLINUX_UFFDIO_COPY, "UFFDIO_COPY", start: start + done, length: total - done, &request) else {
                return total
            }
            // `copy` holds the bytes installed before the kernel stopped, or a negated errno.
            if request.copy > 0 {
                done += UInt64(request.copy)
                continue
            }
            if failure == .fileExists { return done }
            try retryOrThrow(failure, "UFFDIO_COPY", start: start + done, length: total - done)
        }
        return done
    }

    /// `copy` from a span.
    package func copy(to start: UInt64, from source: RawSpan, wake: Bool = true) throws(UserfaultError) -> UInt64 {
        // SAFETY: the kernel reads the view only during the calls `copy` makes inside the closure.
        let result: Result<UInt64, UserfaultError> = unsafe source.withUnsafeBytes { bytes in
            do throws(UserfaultError) { return .success(try unsafe copy(to: start, from: bytes, wake: wake)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Installs zero-filled pages over `[start, start + length)` (page-aligned) with the same
    /// contract as `copy`: returns the bytes installed before the first page already present.
    package func zeroPages(start: UInt64, length: UInt64, wake: Bool = true) throws(UserfaultError) -> UInt64 {
        var done: UInt64 = 0
        while done < length {
            var request = uffdio_zeropage(
                range: uffdio_range(start: start + done, len: length - done),
                mode: wake ? 0 : UInt64(UFFDIO_ZEROPAGE_MODE_DONTWAKE), zeropage: 0)
            guard let failure = try fill(CLINUX_UFFDIO_ZEROPAGE, "UFFDIO_ZEROPAGE", start: start + done, length: length - done, &request) else {
                return length
            }
            if request.zeropage > 0 {
                done += UInt64(request.zeropage)
                continue
            }
            if failure == .fileExists { return done }
            try retryOrThrow(failure, "UFFDIO_ZEROPAGE", start: start + done, length: length - done)
        }
        return done
    }

    /// One COPY or ZEROPAGE call: nil on full success, else the errno for the caller to interpret.
    private func fill<T>(_ request: UInt, _ name: StaticString, start: UInt64, length: UInt64, _ argument: inout T) throws(UserfaultError) -> Errno? {
        let fd = rawValue
        guard fd >= 0 else { throw .closed(name: "\(name)") }
        // SAFETY: `argument` is the plain uffdio_* struct `request` reads and fills within its size.
        let result = unsafe withUnsafeMutableBytes(of: &argument) { bytes in unsafe clinux_ioctl_ptr(fd, request, bytes.baseAddress) }
        return result == 0 ? nil : Errno(rawValue: errno)
    }

    /// EINTR and EAGAIN with nothing installed are retried (after a yield for EAGAIN); anything else is an error.
    private func retryOrThrow(_ failure: Errno, _ name: String, start: UInt64, length: UInt64) throws(UserfaultError) {
        switch failure {
        case .interrupted: return
        case .resourceTemporarilyUnavailable: sched_yield()
        default: throw .ioctl(name: name, start: start, length: length, failure)
        }
    }
}

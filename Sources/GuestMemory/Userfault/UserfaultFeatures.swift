import CLinux

/// userfaultfd features (UFFD_FEATURE_*) asked for in the UFFDIO_API handshake.
///
/// Only the ones Engram may need are named; the kernel grants a superset of what it supports.
package struct UserfaultFeatures: OptionSet, Sendable, Hashable, CustomStringConvertible {
    package let rawValue: UInt64

    package init(rawValue: UInt64) { self.rawValue = rawValue }

    /// MISSING faults on shmem (memfd, tmpfs) mappings: how memfd-backed guest RAM is filled.
    package static let missingShmem = UserfaultFeatures(rawValue: UInt64(UFFD_FEATURE_MISSING_SHMEM))
    /// MISSING faults on hugetlbfs mappings (filled a huge page at a time).
    package static let missingHugetlbfs = UserfaultFeatures(rawValue: UInt64(UFFD_FEATURE_MISSING_HUGETLBFS))
    /// Fault messages carry the faulting thread's id.
    package static let threadID = UserfaultFeatures(rawValue: UInt64(UFFD_FEATURE_THREAD_ID))

    package var description: String {
        let names: [(UserfaultFeatures, String)] = [
            (.missingShmem, "MISSING_SHMEM"), (.missingHugetlbfs, "MISSING_HUGETLBFS"), (.threadID, "THREAD_ID"),
        ]
        var parts = names.filter { contains($0.0) }.map(\.1)
        let rest = rawValue & ~names.reduce(0) { $0 | $1.0.rawValue }
        if rest != 0 { parts.append("0x" + String(rest, radix: 16)) }
        return parts.isEmpty ? "none" : parts.joined(separator: "|")
    }
}

/// The range ioctls UFFDIO_REGISTER says a registered range supports.
package struct UserfaultRangeOperations: OptionSet, Sendable, Hashable {
    package let rawValue: UInt64

    package init(rawValue: UInt64) { self.rawValue = rawValue }

    package static let copy = UserfaultRangeOperations(rawValue: UInt64(CLINUX_UFFD_IOCTL_COPY))
    package static let zeroPage = UserfaultRangeOperations(rawValue: UInt64(CLINUX_UFFD_IOCTL_ZEROPAGE))
    package static let wake = UserfaultRangeOperations(rawValue: UInt64(CLINUX_UFFD_IOCTL_WAKE))
}

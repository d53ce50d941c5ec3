import Glibc

/// The process's limit on open descriptors (RLIMIT_NOFILE).
package enum DescriptorLimit {
    /// Raises the soft limit to the hard one (often 1024 against 500,000+), so the VMM's own
    /// descriptors (guest memory, devices, snapshots, migrations) keep a wide reserve under what
    /// clients open; the control API caps its connections on top. Returns the new soft limit, or
    /// nil if it could not be read or changed.
    @discardableResult
    package static func raiseToHardLimit() -> UInt64? {
        var limit = rlimit()
        // SAFETY: getrlimit and setrlimit read and write the local `limit` during the call.
        guard unsafe getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        guard limit.rlim_cur < limit.rlim_max else { return UInt64(limit.rlim_cur) }
        limit.rlim_cur = limit.rlim_max
        guard unsafe setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return UInt64(limit.rlim_cur)
    }
}

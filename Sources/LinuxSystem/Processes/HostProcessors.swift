import Glibc

/// The host's online CPUs, for sizing helper thread pools.
package enum HostProcessors {
    /// sysconf(_SC_NPROCESSORS_ONLN), at least 1.
    package static var online: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

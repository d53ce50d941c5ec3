import CLinux
import SystemPackage

/// Whether this process may have `pages` 2 MiB huge pages now (mapped anonymously and faulted in,
/// then given back): nil, or why not. The jail tests' check that a hugetlb cgroup limit holds.
package enum HugePageProbe {
    package static func tryAllocate(pages: UInt32) -> Errno? {
        let result = clinux_try_huge_pages(pages)
        return result == 0 ? nil : Errno(rawValue: result)
    }
}

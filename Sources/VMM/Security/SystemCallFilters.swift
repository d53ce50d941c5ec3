import LinuxSystem

/// Turns on the seccomp filters of `SeccompPolicy` for a VMM process, or says loudly that they
/// are off.
package enum SystemCallFilters {
    package enum Choice: Sendable {
        /// Filters on (the default).
        case on
        /// `--no-seccomp`: for debugging only.
        case off
        /// A process an Engram started (live update, fork child): filtered if, and only if, its
        /// parent was; the inherited filters are already in force and cannot be lifted.
        case asParent
    }

    /// Set to 1, a call outside a role's list is logged by the kernel (audit type 1326, with
    /// the thread's name and the call's number; see dmesg) and runs: how the calls of a new
    /// code path are found.
    static let auditVariable = "ENGRAM_SECCOMP_AUDIT"
    /// Test only: a thread of the named role ("vcpu", "device I/O", ...) makes a forbidden call
    /// once its filter is in, so a test can see the report; "ROLE ioctl" makes it an ioctl with a
    /// request the role may not make.
    static let tripVariable = "ENGRAM_TEST_SECCOMP_TRIP"

    package static func apply(_ choice: Choice) throws(VMMError) {
        switch choice {
        case .off:
            Diagnostics.note(
                "WARNING: --no-seccomp: system-call filters are off, so a compromised VMM thread may make any system call; use it only to debug")
            return
        case .asParent:
            guard ThreadFilters.inheritedFilters else { return }
        case .on:
            break
        }
        let audit = ProcessEnvironment.value(auditVariable) == "1"
        let trip = ProcessEnvironment.value(tripVariable).flatMap { text -> ThreadFilters.Trip? in
            let ioctl = text.hasSuffix(" ioctl")
            let name = ioctl ? String(text.dropLast(" ioctl".count)) : text
            return ThreadRole.allCases.first { "\($0)" == name }.map { ThreadFilters.Trip(role: $0, ioctl: ioctl) }
        }
        do { try ThreadFilters.enable(SeccompPolicy.programs(audit: audit), trip: trip) } catch {
            throw .failed("cannot turn on the system-call filters (\(error)); --no-seccomp runs without them")
        }
    }
}

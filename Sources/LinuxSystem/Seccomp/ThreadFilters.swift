import CLinux
import Glibc
import SystemPackage

/// The process's seccomp filters, one per thread role. Once enabled, every thread Engram starts
/// installs its role's filter as it begins (`NamedThread.spawn`); the calling thread (the main
/// thread) takes the control role's, which threads made by others (the control API's event
/// loop, libdispatch's pool) inherit.
package enum ThreadFilters {
    private struct State {
        var programs: [ThreadRole: SeccompProgram]
        /// Test only: a thread of this role makes a forbidden call once its filter is in.
        var trip: Trip?
    }

    /// Test only: which role's thread makes a forbidden call, and whether it is an ioctl with a
    /// request the role may not make (rather than a call the role may not make at all).
    package struct Trip: Sendable {
        package let role: ThreadRole
        package let ioctl: Bool

        package init(role: ThreadRole, ioctl: Bool) {
            self.role = role
            self.ioctl = ioctl
        }

        func happen() {
            _ = ioctl ? clinux_seccomp_forbidden_ioctl() : clinux_seccomp_forbidden_call()
        }
    }

    private static let state = Locked<State?>(nil)

    /// True when the process already runs under filters: it was started by a filtered Engram
    /// (a live update's exec, a fork child, a transfer's new VMM). Filters cannot be removed.
    package static var inheritedFilters: Bool { clinux_seccomp_mode() == 2 }

    /// Turns the filters on: no_new_privs, the SIGSYS report, and the control role's filter on
    /// the calling thread (unless it already holds one from the Engram that started this
    /// process, which had the same list). `trip` is for tests only.
    package static func enable(_ programs: [ThreadRole: SeccompProgram], trip: Trip? = nil) throws(SystemError) {
        // One malloc arena for every thread. glibc gives threads that contend for the main arena
        // arenas of their own, and the first time one of those shrinks it opens
        // /proc/sys/vm/overcommit_memory: an openat that most roles may not make, at a moment
        // that depends on load (a display thread freeing a 3 MiB update did, under the full test
        // suite). The main arena grows and shrinks with brk and never reads a file. Threads keep
        // their own caches of small blocks (tcache), and hot loops allocate nothing.
        _ = clinux_single_malloc_arena()
        guard clinux_set_no_new_privs() == 0 else { throw SystemError("prctl(PR_SET_NO_NEW_PRIVS)", on: "this process", Errno(rawValue: errno)) }
        let callNames = SystemCall.allCases.reduce(into: [String?](repeating: nil, count: 512)) { names, call in
            if Int(call.rawValue) < names.count { names[Int(call.rawValue)] = "\(call)" }
        }
        let roleNames = ThreadRole.allCases.map { "\($0)" }
        let reported = unsafe withCStrings(callNames) { calls in
            unsafe withCStrings(roleNames) { roles in
                // SAFETY: the handler's installer copies every string during the call.
                unsafe clinux_seccomp_report_denials(calls.baseAddress, CInt(calls.count), roles.baseAddress, CInt(roles.count))
            }
        }
        guard reported == 0 else { throw SystemError("sigaction(SIGSYS)", on: "the seccomp report", Errno(rawValue: errno)) }
        state.withLock { $0 = State(programs: programs, trip: trip) }
        if !inheritedFilters { try programs[.control]?.installOnCurrentThread() }
        tripIfAsked(.control)
    }

    /// Installs `role`'s filter on the calling thread if filters are on. A thread that cannot
    /// take its filter must not run unfiltered: the process ends with one line.
    package static func enter(_ role: ThreadRole) {
        guard let (program, trip) = state.withLock({ current in current.map { ($0.programs[role], $0.trip) } }) else { return }
        // A denial's SIGSYS must reach the report: a blocked SIGSYS would kill without a word.
        ProcessSignals.unblockInCurrentThread([SIGSYS])
        do { try program?.installOnCurrentThread() } catch {
            let line = "engram: seccomp: the \(role) thread cannot take its filter: \(error)\n"
            _ = unsafe line.withCString { unsafe write(2, $0, strlen($0)) }
            exit(1)
        }
        if let trip, trip.role == role { trip.happen() }
    }

    /// The forbidden call of the test-only trigger: personality(2) is in no role's list.
    private static func tripIfAsked(_ role: ThreadRole) {
        guard let trip = state.withLock({ $0?.trip }), trip.role == role else { return }
        trip.happen()
    }

    private static func withCStrings<Result>(_ strings: [String?], _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>) -> Result) -> Result {
        // SAFETY: each copy lives until the body returns and is freed once.
        let copies = unsafe strings.map { string in unsafe string.map { unsafe strdup($0)! } }
        defer { for unsafe copy in unsafe copies { unsafe free(copy) } }
        let pointers = unsafe copies.map { copy in unsafe copy.map { unsafe UnsafePointer($0) } }
        return unsafe pointers.withUnsafeBufferPointer { unsafe body($0) }
    }
}

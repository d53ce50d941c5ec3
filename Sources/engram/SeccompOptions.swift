import ArgumentParser
import VMM

/// `--no-seccomp`, for every command that runs a VM or serves one.
struct SeccompOptions: ParsableArguments {
    @Flag(help: "Run without the system-call filters (seccomp), for debugging only.") var noSeccomp = false

    /// Turns the filters on for this process, unless --no-seccomp.
    func apply() throws {
        do { try SystemCallFilters.apply(noSeccomp ? .off : .on) } catch { throw CommandFailure(error) }
    }
}

import ArgumentParser
import VMM

/// A failure already explained to the user: print its one-line message and exit 1, no backtrace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
    init(_ error: VMMError) { description = error.description }
}

/// Runs a VM to its end for a command: a library failure becomes a `CommandFailure`, and a
/// machine that ended badly (a KVM error, a triple fault) the process's exit status.
func runToEnd(_ body: () throws(VMMError) -> Int32) throws {
    let status: Int32
    do { status = try body() } catch { throw CommandFailure(error) }
    if status != 0 { throw ExitCode(status) }
}

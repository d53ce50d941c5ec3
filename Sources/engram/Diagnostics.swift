import VMM

/// A failure already explained to the user: print its one-line message and exit 1, no backtrace.
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
    init(_ error: VMMError) { description = error.description }
}

import Glibc
import SystemPackage

/// A system call that failed: which call, on what (a path, a peer, a purpose), and errno.
/// Targets wrap it in their own error types, or show it as it is.
package struct SystemCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The call's name, e.g. "bind" or "fsync (directory)".
    package let call: String
    /// What the call was made on, for the message.
    package let subject: String
    package let errno: Errno
    /// Set when no call failed but the path was refused before one was made (a FIFO where a
    /// file was to be written): why, in words. `call` and `errno` then say the same for
    /// callers that only read those.
    package let refusal: String?

    package init(_ call: String, on subject: String, _ errno: Errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
        refusal = nil
    }

    /// A path refused before any call: "cannot write SUBJECT: REASON".
    package init(refusing subject: String, because reason: String, _ errno: Errno) {
        call = "open (\(reason))"
        self.subject = subject
        self.errno = errno
        refusal = reason
    }

    /// The error the last failed call left in `errno`.
    package static func last(_ call: String, on subject: String) -> SystemCallError {
        SystemCallError(call, on: subject, Errno(rawValue: Glibc.errno))
    }

    package var description: String {
        if let refusal { return "cannot write \(subject): \(refusal)" }
        return "\(subject): \(call) failed: \(errno)"
    }
}

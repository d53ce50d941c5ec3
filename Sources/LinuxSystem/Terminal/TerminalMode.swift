import Glibc

/// Puts an interactive terminal in raw mode, so every key reaches the guest, and puts it back.
///
/// `@unchecked Sendable`: set up and restored by one thread at a time (start and end of the VMM).
package final class TerminalMode: @unchecked Sendable {
    package init() {}

    private var saved: termios?

    /// Raw input (no echo, no line editing, no signals from keys); output still turns \n into \r\n.
    /// `original` is the mode to put back later when this process did not find the terminal
    /// as the user left it (after a live update the previous VMM had already made it raw).
    package func enterRawMode(original: termios? = nil) {
        guard isatty(STDIN_FILENO) == 1 else { return }
        var current = termios()
        // SAFETY: tcgetattr and tcsetattr read and write termios structs held in locals.
        guard unsafe tcgetattr(STDIN_FILENO, &current) == 0 else { return }
        saved = original ?? current
        var raw = current
        unsafe cfmakeraw(&raw)
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        _ = unsafe tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    /// The mode `restore()` would put back, as bytes to hand to the next VMM; nil without a terminal.
    package var savedBytes: [UInt8]? {
        guard let saved else { return nil }
        // SAFETY: copies the bytes of a plain C struct held in a local.
        return unsafe withUnsafeBytes(of: saved) { unsafe Array($0) }
    }

    /// A termios from `savedBytes`, or nil if the bytes are not one.
    package static func mode(from bytes: [UInt8]) -> termios? {
        guard bytes.count == MemoryLayout<termios>.size else { return nil }
        var mode = termios()
        // SAFETY: the sizes were checked equal; termios is a plain C struct.
        unsafe withUnsafeMutableBytes(of: &mode) { unsafe $0.copyBytes(from: bytes) }
        return mode
    }

    /// Restores the terminal as it was; safe to call more than once.
    package func restore() {
        guard var original = saved else { return }
        _ = unsafe tcsetattr(STDIN_FILENO, TCSANOW, &original)
        saved = nil
    }
}

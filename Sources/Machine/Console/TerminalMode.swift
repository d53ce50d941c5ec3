import Glibc

/// Puts an interactive terminal in raw mode, so every key reaches the guest, and puts it back.
final class TerminalMode: @unchecked Sendable {
    private var saved: termios?

    /// Raw input (no echo, no line editing, no signals from keys); output still turns \n into \r\n.
    func enterRawMode() {
        guard isatty(STDIN_FILENO) == 1 else { return }
        var original = termios()
        guard unsafe tcgetattr(STDIN_FILENO, &original) == 0 else { return }
        saved = original
        var raw = original
        unsafe cfmakeraw(&raw)
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        _ = unsafe tcsetattr(STDIN_FILENO, TCSANOW, &raw)
    }

    /// Restores the terminal as it was; safe to call more than once.
    func restore() {
        guard var original = saved else { return }
        _ = unsafe tcsetattr(STDIN_FILENO, TCSANOW, &original)
        saved = nil
    }
}

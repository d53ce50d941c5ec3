import LinuxSystem

/// The interactive console: the terminal in raw mode and a thread feeding keys to the guest's UART.
package final class Console: Sendable {
    private let terminal = TerminalMode()

    package init() {}

    /// Raw mode on a terminal, then reads standard input until it ends; Ctrl-A x ends the machine.
    /// `terminalMode` is the mode to put back at the end when it is not the current one: the
    /// bytes `terminalModeToRestore` gave in the VMM before a live update.
    package func attach(to machine: Machine, terminalMode: [UInt8]? = nil) throws(MachineError) {
        terminal.enterRawMode(original: terminalMode.flatMap(TerminalMode.mode(from:)))
        let input = ConsoleInput(deliver: { machine.consoleInput($0) }, quit: { machine.finish(.quitFromConsole) })
        do throws(SystemError) { try NamedThread.spawnDetached(name: "console", role: .control) { input.run() } } catch { throw .thread(error) }
    }

    /// The terminal mode `detach()` will put back, for the VMM a live update execs.
    package var terminalModeToRestore: [UInt8]? { terminal.savedBytes }

    /// Puts the terminal back as it was.
    package func detach() { terminal.restore() }
}

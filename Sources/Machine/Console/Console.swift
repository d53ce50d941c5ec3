/// The interactive console: the terminal in raw mode and a thread feeding keys to the guest's UART.
package final class Console: Sendable {
    private let terminal = TerminalMode()

    package init() {}

    /// Raw mode on a terminal, then reads standard input until it ends; Ctrl-A x ends the machine.
    package func attach(to machine: Machine) throws(MachineError) {
        terminal.enterRawMode()
        let input = ConsoleInput(deliver: { machine.consoleInput($0) }, quit: { machine.finish(.quitFromConsole) })
        try OSThread.spawn(name: "console") { input.run() }
    }

    /// Puts the terminal back as it was.
    package func detach() { terminal.restore() }
}

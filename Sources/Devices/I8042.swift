import LinuxSystem

/// The PC keyboard controller at ports 0x60 (data) and 0x64 (status on read, command on write),
/// with an MF2 keyboard behind it and no mouse.
///
/// Its pulse-reset command (0xFE) is how Linux (`reboot=k`) and the test kernel reset the
/// machine; `onReset` is called then, outside the device's lock, and Engram ends the VM.
/// Key presses arrive as scancodes through `injectScancodes` and raise IRQ 1 when the command
/// byte enables keyboard interrupts. The line is driven under the device's lock (see `Serial8250`).
package final class I8042: PortIODevice {
    /// The data port: output buffer on read, keyboard or command data on write.
    package static let dataPort: UInt16 = 0x60
    /// The status (read) and command (write) port.
    package static let commandPort: UInt16 = 0x64
    /// How many bytes the output buffer holds before further bytes are refused.
    package static let outputBufferCapacity = 16

    private let registers = Locked(RegisterFile())
    private let interrupt: any InterruptLine
    private let onReset: @Sendable () -> Void

    /// A controller in its power-on state (keyboard interrupt enabled, translation on, buffer empty).
    /// - Parameters:
    ///   - interrupt: IRQ 1.
    ///   - onReset: called when the guest pulses the CPU reset line.
    package init(interrupt: any InterruptLine, onReset: @escaping @Sendable () -> Void) {
        self.interrupt = interrupt
        self.onReset = onReset
    }

    /// An IN from the data port (the next output byte) or the status port.
    package func read(port: UInt16, size: Int) -> UInt32 {
        registers.withLock { registers in
            guard port == Self.dataPort else { return UInt32(registers.status) }
            let byte = registers.readData(line: interrupt)
            registers.updateInterruptLine(interrupt)
            return UInt32(byte)
        }
    }

    /// An OUT to the data port or the command port (only the low byte counts).
    package func write(port: UInt16, size: Int, value: UInt32) {
        let resetRequested = registers.withLock { registers in
            let byte = UInt8(truncatingIfNeeded: value)
            let reset = port == Self.dataPort ? registers.writeData(byte) : registers.writeCommand(byte)
            registers.updateInterruptLine(interrupt)
            return reset
        }
        if resetRequested { onReset() }
    }

    /// Queues scancodes as if keys were pressed; returns how many fitted (none while the guest
    /// has the keyboard disabled).
    @discardableResult
    package func injectScancodes(_ codes: some Collection<UInt8>) -> Int {
        registers.withLock { registers in
            let accepted = registers.inject(codes)
            registers.updateInterruptLine(interrupt)
            return accepted
        }
    }

    /// Queues one key's scancodes only if all of them fit, so a key is never split; false when
    /// they do not fit or the guest has the keyboard disabled.
    package func injectKeystroke(_ codes: [UInt8]) -> Bool {
        registers.withLock { registers in
            guard registers.acceptsKeys, registers.output.freeCount >= codes.count else { return false }
            let accepted = registers.inject(codes)
            registers.updateInterruptLine(interrupt)
            return accepted == codes.count
        }
    }

    /// The scancode set the guest receives: set 1 while the controller translates (the power-on
    /// default, what Linux and the test kernel use), otherwise the keyboard's own set.
    package var scancodeSetSeen: UInt8 {
        registers.withLock { $0.commandByte & RegisterFile.translate != 0 ? 1 : $0.scancodeSet }
    }

    /// The controller's and keyboard's complete state, for snapshots.
    package func saveState() -> State { registers.withLock { $0.state } }

    /// Loads a saved state and drives IRQ 1 to match it (raising or lowering it only if it
    /// differs from what this device last drove).
    package func restoreState(_ state: State) {
        registers.withLock { registers in
            registers = RegisterFile(restoring: state, lineRaised: registers.interruptLineRaised)
            registers.updateInterruptLine(interrupt)
        }
    }
}

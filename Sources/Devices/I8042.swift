import Synchronization

/// The PC keyboard controller at ports 0x60 (data) and 0x64 (status/command).
///
/// Its pulse-reset command (0xFE) is how Linux (reboot=k) and the test kernel reset the
/// machine; Engram ends the VM then. Key presses arrive as scancodes through `injectScancodes`.
package final class I8042: PortIODevice {
    static let dataPort: UInt16 = 0x60
    static let outputBufferCapacity = 16

    private let state = Mutex(Registers())
    private let interrupt: any InterruptLine
    private let onReset: @Sendable () -> Void

    package init(interrupt: any InterruptLine, onReset: @escaping @Sendable () -> Void) {
        self.interrupt = interrupt
        self.onReset = onReset
    }

    package func read(port: UInt16, size: Int) -> UInt32 {
        state.withLock { registers in
            let value = port == Self.dataPort ? registers.popOutput() : registers.status
            if port == Self.dataPort && registers.interruptLevel {
                // IRQ 1 is edge-triggered and Linux's handler reads one byte per interrupt (as QEMU's
                // ps2_read_data does): drop the line so update() gives the next queued byte a fresh edge.
                registers.interruptLevel = false
                interrupt.set(level: false)
            }
            update(&registers)
            return UInt32(value)
        }
    }

    package func write(port: UInt16, size: Int, value: UInt32) {
        let reset = state.withLock { registers in
            let byte = UInt8(truncatingIfNeeded: value)
            let reset = port == Self.dataPort ? registers.writeData(byte) : registers.writeCommand(byte)
            update(&registers)
            return reset
        }
        if reset { onReset() }
    }

    /// Queues scancodes as if keys were pressed; returns how many fitted.
    @discardableResult
    package func injectScancodes(_ codes: some Collection<UInt8>) -> Int {
        state.withLock { registers in
            var accepted = 0
            for code in codes where registers.pushOutput(code) { accepted += 1 }
            update(&registers)
            return accepted
        }
    }

    /// The controller's complete state, for snapshots.
    package func saveState() -> Registers { state.withLock { $0 } }

    package func restoreState(_ saved: Registers) {
        state.withLock { registers in
            registers = saved
            registers.interruptLevel = false
            update(&registers)
        }
    }

    private func update(_ registers: inout Registers) {
        let level = registers.outputCount > 0 && registers.commandByte & 0x01 != 0 && registers.commandByte & 0x10 == 0
        if level != registers.interruptLevel {
            registers.interruptLevel = level
            interrupt.set(level: level)
        }
    }
}

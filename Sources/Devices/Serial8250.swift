import Synchronization

/// A 16550A UART (COM1): what Linux's 8250 driver and the test kernel expect.
///
/// Transmitted bytes go straight to `output`; received bytes wait in a 64-byte FIFO until
/// the guest reads them (`receive` returns how many fit, so input is held back, never dropped).
/// The interrupt line is driven as a level, like QEMU's UART; the 8259 sees each rising edge.
package final class Serial8250: PortIODevice {
    static let fifoCapacity = 64

    private let state: Mutex<Registers>
    private let interrupt: any InterruptLine
    private let output: @Sendable (UInt8) -> Void

    package init(interrupt: any InterruptLine, output: @escaping @Sendable (UInt8) -> Void) {
        self.interrupt = interrupt
        self.output = output
        state = Mutex(Registers())
    }

    package func read(port: UInt16, size: Int) -> UInt32 {
        state.withLock { registers in
            let value = registers.read(offset: Int(port & 7))
            update(&registers)
            return UInt32(value)
        }
    }

    package func write(port: UInt16, size: Int, value: UInt32) {
        state.withLock { registers in
            let byte = UInt8(truncatingIfNeeded: value)
            let offset = Int(port & 7)
            if offset == 0 && !registers.divisorLatchAccess && !registers.loopback {
                // THR: the byte leaves at once; clearing then setting THR-empty gives the guest a fresh edge.
                registers.transmitInterruptPending = false
                update(&registers)
                output(byte)
                registers.transmitInterruptPending = true
            } else {
                registers.write(offset: offset, byte)
            }
            update(&registers)
        }
    }

    /// Queues bytes typed by the user; returns how many fitted in the receive FIFO.
    package func receive(_ bytes: some Collection<UInt8>) -> Int {
        state.withLock { registers in
            var accepted = 0
            for byte in bytes {
                guard registers.pushReceived(byte) else { break }
                accepted += 1
            }
            update(&registers)
            return accepted
        }
    }

    /// Free space in the receive FIFO.
    package var receiveSpace: Int { state.withLock { Self.fifoCapacity - $0.receivedCount } }

    /// The UART's complete state, for snapshots.
    package func saveState() -> Registers { state.withLock { $0 } }

    /// Restores a saved state and re-drives the interrupt line to match it.
    package func restoreState(_ saved: Registers) {
        state.withLock { registers in
            registers = saved
            registers.interruptLevel = false
            update(&registers)
        }
    }

    private func update(_ registers: inout Registers) {
        let level = registers.pendingInterrupt != Registers.noInterrupt
        if level != registers.interruptLevel {
            registers.interruptLevel = level
            interrupt.set(level: level)
        }
    }
}

import LinuxSystem

/// A 16550A UART (COM1 at 0x3f8): what Linux's 8250 driver and the test kernel expect.
///
/// Transmitted bytes go to `output`, called outside the device's lock, so a slow console blocks
/// only the vCPU that wrote. Received bytes wait in a 64-byte FIFO until the guest reads them:
/// `receive` returns how many fitted, so the caller can hold the rest back instead of dropping it.
///
/// The interrupt is a level, recomputed after every access and driven only when it changes, as
/// QEMU's UART does; the 8259 sees each rising edge. The line is driven while the device's lock is
/// held, so level changes reach the interrupt controller in the order the registers changed. That
/// is safe because an `InterruptLine` (KVM_IRQ_LINE, a test recorder) never calls back into a device.
///
/// The device decodes the low three bits of the port, so it works at any 8-aligned base.
package final class Serial8250: PortIODevice {
    /// How many bytes the receive FIFO holds.
    package static let fifoCapacity = 64
    /// How many consecutive ports the UART occupies.
    package static let portCount: UInt16 = 8

    private let registers = Locked(RegisterFile())
    private let interrupt: any InterruptLine
    private let output: @Sendable (UInt8) -> Void

    /// A UART in its power-on state (9600 baud 8N1, FIFO off, no interrupts enabled).
    /// - Parameters:
    ///   - interrupt: the IRQ line (IRQ 4 for COM1).
    ///   - output: receives each transmitted byte, on the writing vCPU's thread, outside the lock.
    package init(interrupt: any InterruptLine, output: @escaping @Sendable (UInt8) -> Void) {
        self.interrupt = interrupt
        self.output = output
    }

    /// An IN from one of the UART's registers (the low byte carries it).
    package func read(port: UInt16, size: Int) -> UInt32 {
        registers.withLock { registers in
            let value = registers.read(offset: Int(port & 7))
            registers.updateInterruptLine(interrupt)
            return UInt32(value)
        }
    }

    /// An OUT to one of the UART's registers (only the low byte counts).
    package func write(port: UInt16, size: Int, value: UInt32) {
        let transmitted = registers.withLock { registers in
            let transmitted = registers.write(offset: Int(port & 7), UInt8(truncatingIfNeeded: value), line: interrupt)
            registers.updateInterruptLine(interrupt)
            return transmitted
        }
        guard let transmitted else { return }
        output(transmitted)
        // Only now is the holding register empty: the guest hears THR-empty after the byte is out.
        registers.withLock { registers in
            registers.transmitterEmptied()
            registers.updateInterruptLine(interrupt)
        }
    }

    /// Queues bytes from the console; returns how many fitted in the receive FIFO.
    ///
    /// Offering more than `receiveSpace` sets the overrun bit (LSR.OE) the guest will see, as a
    /// real line would; bytes not accepted stay the caller's. In loopback the FIFO takes nothing.
    package func receive(_ bytes: some Collection<UInt8>) -> Int {
        registers.withLock { registers in
            let accepted = registers.receive(bytes)
            registers.updateInterruptLine(interrupt)
            return accepted
        }
    }

    /// How many bytes `receive` would accept now (0 in loopback).
    package var receiveSpace: Int {
        registers.withLock { $0.loopback ? 0 : $0.receiveFIFO.freeCount }
    }

    /// The UART's complete state, for snapshots.
    package func saveState() -> State { registers.withLock { $0.state } }

    /// Loads a saved state and drives the interrupt line to match it (raising or lowering it
    /// only if it differs from what this device last drove).
    package func restoreState(_ state: State) {
        registers.withLock { registers in
            registers = RegisterFile(restoring: state, lineRaised: registers.interruptLineRaised)
            registers.updateInterruptLine(interrupt)
        }
    }
}

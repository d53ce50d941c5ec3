import LinuxSystem

/// A power-off register modelled on the ACPI PM1a control register QEMU's PC machines put at 0x604.
///
/// A 16-bit register over two ports. Writing SLP_EN (bit 13) with SLP_TYP (bits 10–12) zero, the
/// soft-off type in Engram's model, calls `onPowerOff` outside the lock; without ACPI tables this
/// is the one standard-looking way a small kernel asks for it. SLP_EN is write-only: reads return
/// the last value written with it clear. Byte writes merge into the register, so an 8-bit write
/// of 0x20 to the high port powers off too.
package final class PowerControlPort: PortIODevice {
    /// SLP_EN: start the sleep (here: power-off) transition.
    package static let sleepEnable: UInt16 = 1 << 13
    /// SLP_TYP: which sleep state; 0 is the only one Engram knows, soft off.
    package static let sleepTypeMask: UInt16 = 0x7 << 10
    /// How many consecutive ports the register occupies.
    package static let portCount: UInt16 = 2

    private let control = Locked<UInt16>(0)
    private let onPowerOff: @Sendable () -> Void

    /// A register reading 0; `onPowerOff` is called on every power-off write.
    package init(onPowerOff: @escaping @Sendable () -> Void) { self.onPowerOff = onPowerOff }

    /// An IN from the register's low (even) or high (odd) port.
    package func read(port: UInt16, size: Int) -> UInt32 {
        let shift = 8 * UInt32(port & 1)
        let value = UInt32(control.withLock { $0 }) >> shift
        return size >= 4 ? value : value & ((1 << (8 * UInt32(size))) - 1)
    }

    /// An OUT to the register; powers off when the resulting value has SLP_EN set and SLP_TYP zero.
    package func write(port: UInt16, size: Int, value: UInt32) {
        let shift = 8 * UInt32(port & 1)
        let sizeMask: UInt32 = size >= 4 ? .max : (1 << (8 * UInt32(size))) - 1
        let written = UInt16(truncatingIfNeeded: (sizeMask << shift) & 0xffff)
        let incoming = UInt16(truncatingIfNeeded: (value & sizeMask) << shift)
        let powerOff = control.withLock { control in
            let merged = control & ~written | incoming
            control = merged & ~Self.sleepEnable
            return merged & Self.sleepEnable != 0 && merged & Self.sleepTypeMask == 0
        }
        if powerOff { onPowerOff() }
    }

    /// The register's value, for snapshots (SCI_EN and SLP_TYP matter to an ACPI guest).
    package func saveState() -> State { State(control: control.withLock { $0 }) }

    /// Loads a saved value; never powers off.
    package func restoreState(_ state: State) { control.withLock { $0 = state.control & ~Self.sleepEnable } }
}

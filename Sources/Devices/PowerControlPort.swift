import Synchronization

/// A power-off register modelled on the ACPI PM1a control register QEMU's PC machines put at 0x604.
///
/// Writing SLP_EN (bit 13) with SLP_TYP 0 powers the machine off; without ACPI tables this
/// is the one standard-looking way a small kernel asks for it.
package final class PowerControlPort: PortIODevice {
    static let sleepEnable: UInt32 = 1 << 13
    static let sleepTypeMask: UInt32 = 0x7 << 10

    private let lastValue = Atomic<UInt32>(0)
    private let onPowerOff: @Sendable () -> Void

    package init(onPowerOff: @escaping @Sendable () -> Void) { self.onPowerOff = onPowerOff }

    package func read(port: UInt16, size: Int) -> UInt32 { lastValue.load(ordering: .relaxed) }

    package func write(port: UInt16, size: Int, value: UInt32) {
        lastValue.store(value & ~Self.sleepEnable, ordering: .relaxed)
        if value & Self.sleepEnable != 0 && value & Self.sleepTypeMask == 0 { onPowerOff() }
    }
}

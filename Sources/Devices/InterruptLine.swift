/// An interrupt request line from a device to the interrupt controller.
///
/// The machine implements it with KVM_IRQ_LINE on the in-kernel PIC/IOAPIC; tests
/// implement it with a recorder. Edge-triggered ISA devices raise then lower it.
package protocol InterruptLine: Sendable {
    /// Drives the line to `level` (true = asserted).
    func set(level: Bool)
}

import Devices
import KVM

/// An ISA interrupt line wired to KVM's in-kernel PIC and IOAPIC through KVM_IRQ_LINE.
struct KVMInterruptLine: InterruptLine {
    let machine: VirtualMachine
    let irq: UInt32

    func set(level: Bool) {
        // Fails only for a bad irq number, which Engram chose itself: nothing a guest can cause.
        do { try machine.setInterruptLine(irq, level: level) } catch { preconditionFailure("KVM_IRQ_LINE \(irq): \(error)") }
    }
}

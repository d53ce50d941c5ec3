import Devices
import KVM

/// The PC devices every Engram machine has, on their usual ports and interrupt lines.
struct LegacyDevices {
    static let com1Port: UInt16 = 0x3f8
    static let com1IRQ: UInt32 = 4
    static let keyboardIRQ: UInt32 = 1
    static let powerControlPort: UInt16 = 0x604

    let serial: Serial8250
    let keyboardController: I8042
    let powerControl: PowerControlPort
    let bus: PortIOBus
    private let guestRequest: GuestRequestRelay

    init(machine: VirtualMachine, console: ConsoleOutput) throws(MachineError) {
        let relay = GuestRequestRelay()
        guestRequest = relay
        serial = Serial8250(interrupt: KVMInterruptLine(machine: machine, irq: Self.com1IRQ), output: { console.write($0) })
        keyboardController = I8042(interrupt: KVMInterruptLine(machine: machine, irq: Self.keyboardIRQ), onReset: { relay.report(.reset) })
        powerControl = PowerControlPort(onPowerOff: { relay.report(.poweredOff) })
        let builder = PortIOBus.Builder()
        do {
            try builder.register(serial, ports: Self.com1Port...(Self.com1Port + 7))
            try builder.register(keyboardController, ports: 0x60...0x60)
            try builder.register(keyboardController, ports: 0x64...0x64)
            try builder.register(powerControl, ports: Self.powerControlPort...(Self.powerControlPort + 1))
        } catch { throw .device(error) }
        bus = builder.build()
    }

    /// Where guest-initiated power-off and reset go once the machine exists.
    func onGuestRequest(_ handler: @escaping @Sendable (MachineOutcome) -> Void) { guestRequest.connect(handler) }
}

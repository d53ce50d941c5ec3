import LinuxSystem

/// Forwards a device's power-off or reset to the machine, which is wired up after the devices exist.
final class GuestRequestRelay: Sendable {
    private let handler = Locked<(@Sendable (MachineOutcome) -> Void)?>(nil)

    func connect(_ handler: @escaping @Sendable (MachineOutcome) -> Void) { self.handler.withLock { $0 = handler } }

    func report(_ outcome: MachineOutcome) { handler.withLock { $0 }?(outcome) }
}

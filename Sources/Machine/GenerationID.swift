import GuestMemory

/// Where a guest finds its VM generation ID (ACPI VMGenID, described in the DSDT) and the
/// interrupt line that says it changed. Saved with the machine, so a restore, fork or
/// migration knows the guest has one; machines from before Engram had it have none.
package struct GenerationIDDevice: Codable, Sendable, Equatable {
    /// Guest-physical address of the 16 bytes.
    package var address: UInt64
    /// The generic event device's line: a pulse makes the guest re-read the ID.
    package var notifyGSI: UInt32

    /// Where this Engram's x86 layout puts them.
    package static let standard = GenerationIDDevice(
        address: X86Layout.generationIDAddress.rawValue, notifyGSI: X86Layout.generationIDNotifyGSI)

    /// The ID's length in bytes (a GUID).
    package static let byteCount = 16

    /// 16 bytes from the host's random source: a new generation.
    static func freshID() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

extension Machine {
    /// Gives the guest a new VM generation ID and raises the line that tells it so: a fork's
    /// child or a clone restored from a snapshot is a new instance of the VM, and a guest that
    /// watches the ID (Linux reseeds its random generator) must not repeat its parent's secrets.
    /// Live updates and migrations continue the same instance and keep the ID. Call once the
    /// state is loaded and, for a lazy restore, the pager runs; nothing happens for a machine
    /// without the device.
    package func beginNewGeneration() throws(MachineError) {
        guard let device = configuration.generationID else { return }
        do { try memory.write(GenerationIDDevice.freshID(), at: GuestAddress(device.address)) } catch { throw .memory(error) }
        let line = KVMInterruptLine(machine: virtualMachine, irq: device.notifyGSI)
        line.set(level: true)
        line.set(level: false)
    }
}

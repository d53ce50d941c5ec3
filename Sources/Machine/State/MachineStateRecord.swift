import Devices
import KVM

/// Everything a paused machine needs to continue elsewhere, apart from guest memory.
///
/// Versioned and Codable, so the snapshot format can store it as its state section;
/// kernel structs are kept as their raw bytes (KVM's stable ABI).
package struct MachineStateRecord: Codable, Sendable, Equatable {
    /// 2: kernel structs as base64 strings keyed by name (1 had arrays of numbers).
    package static let currentVersion = 2

    package var version = MachineStateRecord.currentVersion
    /// What the machine was built with; a restore checks it against this host and Engram.
    package var configuration: SavedConfiguration
    package var vcpus: [VCPUStateRecord]
    package var interruptControllers: [InterruptControllerChip: [UInt8]]
    package var timer: [UInt8]
    package var clockNanoseconds: UInt64
    package var serial: Serial8250.State
    package var keyboardController: I8042.State
    package var powerControl: PowerControlPort.State
}

/// The machine's shape as it was built: enough to rebuild an identical one, and to say why not.
package struct SavedConfiguration: Codable, Sendable, Equatable {
    package var cpuCount: Int
    package var memorySizeInBytes: UInt64
    /// The regions by name, in the order the snapshot stores them.
    package var regionNames: [String]
    /// For people reading a snapshot: what was booted.
    package var kernelPath: String
    package var commandLine: String?
}

/// One vCPU's saved state.
package struct VCPUStateRecord: Codable, Sendable, Equatable {
    package var id: UInt32
    /// What CPUID returned to this vCPU; a restore gives the guest exactly the same.
    package var cpuid: [CPUIDEntry]
    package var blocks: [VCPUStateBlock: [UInt8]]
    package var modelSpecificRegisters: [ModelSpecificRegister]
}

/// One MSR and its value.
package struct ModelSpecificRegister: Codable, Sendable, Equatable {
    package var index: UInt32
    package var value: UInt64
}

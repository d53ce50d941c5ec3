import FoundationEssentials
import Devices
import KVM
import SnapshotFormat

/// The machine's state as named, versioned sections (docs/FORMAT.md "Machine sections"), one per
/// part that evolves on its own, in the spirit of Firecracker's per-component `Persist`: a
/// change to one device bumps that section's version alone, and a loader names the section it
/// cannot read. Payloads are JSON; new fields are added as optional ones with defaults, so an
/// older file still decodes; 64-bit values are decimal strings and kernel structs base64.
enum MachineSections {
    /// Every section this Engram writes, with the newest version it reads.
    static let configuration = SectionKind(name: "machine", version: 1)
    static let irqchip = SectionKind(name: "irqchip", version: 1)
    static let timer = SectionKind(name: "pit", version: 1)
    static let clock = SectionKind(name: "clock", version: 1)
    static let serial = SectionKind(name: "serial", version: 1)
    static let keyboardController = SectionKind(name: "i8042", version: 1)
    static let powerControl = SectionKind(name: "power-control", version: 1)
    /// `vcpu.0`, `vcpu.1`, …: one per vCPU.
    static let vcpuPrefix = "vcpu."
    static let vcpuVersion: UInt32 = 1
    /// `virtio.blk0`, `virtio.rng0`, …: one per virtio device, in layout order.
    static let virtioPrefix = "virtio."
    static let virtioVersion: UInt32 = 1

    static let devices = [irqchip, timer, clock, serial, keyboardController, powerControl]
}

/// A section's name and the version this Engram writes (and the newest it reads).
struct SectionKind: Equatable {
    let name: String
    let version: UInt32
}

/// Section "machine": what the machine was built with, so a destination can refuse a snapshot
/// that does not fit before it touches memory.
struct ConfigurationSection: Codable, Equatable {
    var cpuCount: Int
    var memorySizeInBytes: ExactUInt64
    var regionNames: [String]
    var kernelPath: String
    var commandLine: String?
    /// The CPUID feature leaves (1, 7.0, 0x80000001) vCPU 0 was shown.
    var cpuFeatures: [CPUIDEntry]
    /// Every state section the snapshot holds, with its version.
    var sections: [SectionVersion]
}

struct SectionVersion: Codable, Equatable {
    var name: String
    var version: UInt32
}

/// Section `vcpu.N`.
struct VCPUSection: Codable, Equatable {
    var id: UInt32
    var cpuid: [CPUIDEntry]
    /// KVM structs by block name (`specialRegisters`, `registers`, …), base64.
    var blocks: [String: String]
    var modelSpecificRegisters: [MSRValue]

    struct MSRValue: Codable, Equatable {
        var index: UInt32
        var value: ExactUInt64
    }
}

/// Section "irqchip": kvm_irqchip structs by chip, base64.
struct IRQChipSection: Codable, Equatable {
    var picMaster: String
    var picSlave: String
    var ioAPIC: String
}

/// Section "pit": kvm_pit_state2, base64.
struct TimerSection: Codable, Equatable {
    var pitState: String
}

/// Section "clock": KVM_GET_CLOCK's kvmclock value in nanoseconds.
struct ClockSection: Codable, Equatable {
    var kvmclockNanoseconds: ExactUInt64
}

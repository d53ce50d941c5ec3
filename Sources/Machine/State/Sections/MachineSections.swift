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
    /// Version 2 stores `cpuid` and `modelSpecificRegisters` as base64 kernel structs, like the
    /// blocks: decoding 56 CPUID leaves and 40 MSRs as JSON objects was most of a restore's
    /// state-decoding time. Version 1 sections are still read.
    static let vcpuVersion: UInt32 = 2
    /// `virtio.blk0`, `virtio.rng0`, …: one per virtio device, in layout order.
    static let virtioPrefix = "virtio."
    static let virtioVersion: UInt32 = 1
    /// Where the guest's VM generation ID lives; absent in files from before Engram had it.
    static let generationID = SectionKind(name: "vmgenid", version: 1)

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

/// Section `vcpu.N`, version 2.
struct VCPUSection: Codable, Equatable {
    var id: UInt32
    /// `kvm_cpuid_entry2` structs, base64.
    var cpuid: String
    /// KVM structs by block name (`specialRegisters`, `registers`, …), base64.
    var blocks: [String: String]
    /// `kvm_msr_entry` structs, base64.
    var modelSpecificRegisters: String
}

/// Section `vcpu.N`, version 1: CPUID leaves and MSRs as JSON objects.
struct VCPUSectionVersion1: Decodable {
    var id: UInt32
    var cpuid: [CPUIDEntry]
    var blocks: [String: String]
    var modelSpecificRegisters: [MSRValue]

    struct MSRValue: Decodable {
        var index: UInt32
        var value: ExactUInt64
    }
}

/// CPUID leaves and MSRs as the kernel lays them out (little-endian): `kvm_cpuid_entry2` is
/// function, index, flags, eax, ebx, ecx, edx and three padding words (40 bytes);
/// `kvm_msr_entry` is index, a reserved word and the value (16 bytes).
enum KernelEntries {
    static let cpuidEntryBytes = 40
    static let msrEntryBytes = 16

    static func encode(_ entries: [CPUIDEntry]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.count * cpuidEntryBytes)
        for entry in entries {
            for word in [entry.function, entry.index, entry.flags, entry.eax, entry.ebx, entry.ecx, entry.edx, 0, 0, 0] { append(word, to: &bytes) }
        }
        return bytes
    }

    static func encode(_ registers: [ModelSpecificRegister]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(registers.count * msrEntryBytes)
        for register in registers {
            append(register.index, to: &bytes)
            append(UInt32(0), to: &bytes)
            append(register.value, to: &bytes)
        }
        return bytes
    }

    /// The leaves in `bytes`, nil unless they are whole `kvm_cpuid_entry2` structs.
    static func cpuid(_ bytes: [UInt8]) -> [CPUIDEntry]? {
        guard bytes.count % cpuidEntryBytes == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: cpuidEntryBytes).map { start in
            let word = { (index: Int) in u32(bytes, start + 4 * index) }
            return CPUIDEntry(function: word(0), index: word(1), flags: word(2), eax: word(3), ebx: word(4), ecx: word(5), edx: word(6))
        }
    }

    /// The registers in `bytes`, nil unless they are whole `kvm_msr_entry` structs.
    static func registers(_ bytes: [UInt8]) -> [ModelSpecificRegister]? {
        guard bytes.count % msrEntryBytes == 0 else { return nil }
        return stride(from: 0, to: bytes.count, by: msrEntryBytes).map { start in
            ModelSpecificRegister(index: u32(bytes, start), value: UInt64(u32(bytes, start + 8)) | UInt64(u32(bytes, start + 12)) << 32)
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: T.bitWidth, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    private static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
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

/// Section "vmgenid": where the guest's VM generation ID lives (ACPI VMGenID) and the line of
/// the event device that announces a new one. The ID itself is in guest memory.
struct GenerationIDSection: Codable, Equatable {
    var address: ExactUInt64
    var notifyGSI: UInt32
}

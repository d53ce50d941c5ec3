import KVM
import SnapshotFormat

/// Checks a saved machine state against the machine (or host) it is about to be loaded into,
/// so an incompatible snapshot is refused with a reason before any vCPU runs.
enum SavedStateCheck {
    /// The record's own consistency: version, vCPU count and ids, regions.
    static func wellFormed(_ record: MachineStateRecord) throws(MachineError) {
        guard record.version == MachineStateRecord.currentVersion else {
            throw .incompatibleState(
                "machine state version \(record.version) is not \(MachineStateRecord.currentVersion), the one this Engram reads")
        }
        let saved = record.configuration
        guard (1...MachineConfiguration.maximumCPUCount).contains(saved.cpuCount) else {
            throw .incompatibleState("saved configuration has \(saved.cpuCount) vCPUs; expected 1 to \(MachineConfiguration.maximumCPUCount)")
        }
        guard record.vcpus.count == saved.cpuCount else {
            throw .incompatibleState("saved state holds \(record.vcpus.count) vCPUs but its configuration says \(saved.cpuCount)")
        }
        for (index, vcpu) in record.vcpus.enumerated() where vcpu.id != UInt32(index) {
            throw .incompatibleState("saved vCPU \(index) has id \(vcpu.id); expected ids 0 to \(saved.cpuCount - 1) in order")
        }
        for name in saved.regionNames where !MachineConfiguration.regionNames.contains(name) {
            throw .incompatibleState("saved configuration has region \(name); this Engram knows \(MachineConfiguration.regionNames.joined(separator: ", "))")
        }
        guard saved.regionNames.contains("ram") else { throw .incompatibleState("saved configuration has no ram region") }
    }

    /// The record fits `machine`: same vCPUs and regions.
    static func compatible(_ record: MachineStateRecord, with machine: Machine) throws(MachineError) {
        try wellFormed(record)
        guard record.vcpus.count == machine.vcpus.count else {
            throw .incompatibleState("saved state has \(record.vcpus.count) vCPUs; this machine has \(machine.vcpus.count)")
        }
        let names = machine.memory.regions.map(\.name)
        guard record.configuration.regionNames == names else {
            throw .incompatibleState("saved state has regions \(record.configuration.regionNames); this machine has \(names)")
        }
    }

    /// The snapshot's regions are the ones the record names, sized and placed as this Engram places them.
    static func regions(_ regions: [SnapshotRegionShape], match record: MachineStateRecord) throws(MachineError) {
        try Self.regions(regions, match: record.configuration)
    }

    static func regions(_ regions: [SnapshotRegionShape], match configuration: SavedConfiguration) throws(MachineError) {
        let names = regions.map(\.name)
        guard names == configuration.regionNames else {
            throw .incompatibleState("snapshot memory has regions \(names); its machine state names \(configuration.regionNames)")
        }
        guard let ram = regions.first(where: { $0.name == "ram" }), ram.sizeInBytes == configuration.memorySizeInBytes else {
            throw .incompatibleState("snapshot ram region does not match the saved memory size \(configuration.memorySizeInBytes)")
        }
        let expected = RAMLayout.placements(forSize: ram.sizeInBytes)
        guard ram.placements == expected else {
            throw .incompatibleState("snapshot places ram at \(ram.placements); this Engram places \(ram.sizeInBytes) bytes at \(expected)")
        }
    }

    /// Every CPU feature the guest was shown is one this host can show it too.
    ///
    /// Compares the feature words a guest kernel acts on (leaf 1, leaf 7.0, leaf 0x80000001)
    /// with what this host would give a freshly booted guest; bits the OS itself toggles
    /// (OSXSAVE, OSPKE) are ignored.
    /// Every vCPU's features (`saved[i]` is vCPU i's CPUID) against what `supported` (this
    /// host's KVM_GET_SUPPORTED_CPUID) lets a guest of `cpuCount` vCPUs be shown.
    static func cpuFeatures(_ saved: [[CPUIDEntry]], cpuCount: Int, supported: [CPUIDEntry]) throws(MachineError) {
        for (index, cpuid) in saved.enumerated() {
            let host = CPUIDTemplate.entries(from: supported, cpuID: UInt32(index), cpuCount: cpuCount)
            try cpuFeatures(cpuid, hostTemplate: host, vcpu: UInt32(index))
        }
    }

    /// What this host's KVM offers guests (KVM_GET_SUPPORTED_CPUID).
    static func hostCPUID() throws(MachineError) -> [CPUIDEntry] {
        do { return try KVMSystem().supportedCPUID() } catch { throw .kvm(error) }
    }

    static func cpuFeatures(_ saved: [CPUIDEntry], hostTemplate: [CPUIDEntry], vcpu: UInt32) throws(MachineError) {
        let features: [(function: UInt32, index: UInt32, registers: [(String, KeyPath<CPUIDEntry, UInt32>, UInt32)])] = [
            (1, 0, [("ecx", \.ecx, ~(UInt32(1) << 27)), ("edx", \.edx, ~0)]),
            (7, 0, [("ebx", \.ebx, ~0), ("ecx", \.ecx, ~(UInt32(1) << 4)), ("edx", \.edx, ~0)]),
            (0x8000_0001, 0, [("ecx", \.ecx, ~0), ("edx", \.edx, ~0)]),
        ]
        for leaf in features {
            guard let old = saved.first(where: { $0.function == leaf.function && $0.index == leaf.index }) else { continue }
            let host = hostTemplate.first { $0.function == leaf.function && $0.index == leaf.index }
            for (name, register, mask) in leaf.registers {
                let missing = old[keyPath: register] & mask & ~(host?[keyPath: register] ?? 0)
                guard missing == 0 else {
                    throw .incompatibleState(
                        "snapshot needs CPU features this host lacks: vCPU \(vcpu) CPUID leaf 0x\(String(leaf.function, radix: 16)).\(leaf.index) "
                            + "\(name) bits 0x\(String(missing, radix: 16))")
                }
            }
        }
    }
}

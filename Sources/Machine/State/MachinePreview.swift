import Devices
import FoundationEssentials
import KVM
import SnapshotFormat

/// What a migration's destination checks before any page arrives, as QEMU's configuration
/// section lets it: the machine's shape, each vCPU's CPUID and the disks it serves. The source
/// sends it with the plan while the guest still runs (none of it changes during a migration);
/// the state itself comes at the end, after the memory.
package struct MachinePreview: Codable, Sendable, Equatable {
    package struct Disk: Codable, Sendable, Equatable {
        package var configuration: DiskConfiguration
        package var capacitySectors: UInt64
    }

    package var configuration: SavedConfiguration
    /// vCPU i's CPUID.
    package var cpuid: [[CPUIDEntry]]
    package var disks: [Disk]
}

extension Machine {
    /// The preview of this machine, running or paused.
    package func preview() -> MachinePreview {
        MachinePreview(
            configuration: SavedConfiguration(
                cpuCount: configuration.cpuCount, memorySizeInBytes: configuration.memorySizeInBytes, regionNames: memory.regions.map(\.name),
                kernelPath: configuration.kernelPath, commandLine: configuration.commandLine),
            cpuid: cpuid,
            disks: virtioDevices().compactMap { report in
                report.disk.map { MachinePreview.Disk(configuration: $0.configuration, capacitySectors: $0.capacityBytes / 512) }
            })
    }
}

extension MachinePreview {
    package func encoded() throws(MachineError) -> [UInt8] {
        do { return Array(try JSONEncoder().encode(self)) } catch { throw .stateEncoding("cannot encode the machine preview: \(error)") }
    }

    package static func decode(_ bytes: [UInt8], from peer: String) throws(MachineError) -> MachinePreview {
        do { return try JSONDecoder().decode(MachinePreview.self, from: Data(bytes)) } catch {
            throw .stateUnreadable("the machine preview from \(peer) does not decode: \(DecodingProblem.describe(error))")
        }
    }

    /// Refuses, in one line, what this host cannot run: memory regions unlike `shapes` or
    /// unknown here, CPU features its KVM lacks, a disk (after `overrides`, as a receive applies
    /// them) it cannot open or whose size differs from the one the guest sees.
    package func check(shapes: [SnapshotRegionShape], overrides: DeviceOverrides) throws(MachineError) {
        try SavedStateCheck.regions(shapes, match: configuration)
        guard cpuid.count == configuration.cpuCount else {
            throw .incompatibleState("the preview holds \(cpuid.count) vCPUs but its configuration says \(configuration.cpuCount)")
        }
        try SavedStateCheck.cpuFeatures(cpuid, cpuCount: configuration.cpuCount, supported: try SavedStateCheck.hostCPUID())
        guard overrides.disks.count <= disks.count else {
            throw .incompatibleState("\(overrides.disks.count) --disk overrides given, but the VM has \(disks.count) disks")
        }
        try overrides.checkSourceDisks(disks.map(\.configuration))
        for (index, disk) in disks.enumerated() {
            let wanted = index < overrides.disks.count ? overrides.disks[index] : disk.configuration
            let file = try VirtioDevices.openDisk(wanted)
            let size: UInt64
            do { size = try file.sizeInBytes() } catch { throw .disk(path: wanted.path, reason: "cannot read its size: \(error.errno)") }
            guard size / 512 == disk.capacitySectors else {
                throw .disk(path: wanted.path, reason: "holds \(size) bytes; the migrating guest's disk blk\(index) has \(VirtioDevices.sizeText(sectors: disk.capacitySectors))")
            }
        }
    }
}

import Devices
import FoundationEssentials
import GuestMemory
import KVM
import SnapshotFormat

extension Machine {
    /// The guest-physical layout of restored `regions` (in the snapshot's order): ram placed as
    /// this Engram places it, and a framebuffer at its fixed address. Checked against the snapshot
    /// and its state by `init(restoring:)`.
    package static func restoredMemory(_ regions: [GuestRegion]) throws(MachineError) -> GuestMemoryMap {
        guard let ram = regions.first(where: { $0.name == "ram" }) else {
            throw .incompatibleState("snapshot has no ram region; it has \(regions.map(\.name))")
        }
        var mappings = RAMLayout.mappings(for: ram)
        if let framebuffer = regions.first(where: { $0.name == framebufferRegionName }) {
            mappings.append(try framebufferMapping(framebuffer))
        }
        return GuestMemoryMap(regions: regions, mappings: mappings)
    }

    /// Rebuilds a machine from a snapshot's state around memory already restored (`memory`,
    /// from `restoredMemory`) and a shell prepared over it. Every vCPU, the interrupt
    /// controllers, the timer, the clock and the devices are as they were saved; `start()`
    /// continues the guest. Refuses, before any vCPU exists, a state this Engram or this host
    /// cannot run.
    package convenience init(
        restoring record: MachineStateRecord, snapshotRegions: [SnapshotRegionShape], memory: GuestMemoryMap, shell: MachineShell,
        consoleLogPath: String? = nil
    ) throws(MachineError) {
        try SavedStateCheck.wellFormed(record)
        try SavedStateCheck.regions(snapshotRegions, match: record)
        try self.init(continuing: record, memory: memory, shell: shell, consoleLogPath: consoleLogPath)
    }

    /// Rebuilds a machine from a saved state around memory that already holds the guest's
    /// pages (a restore's, or the previous VMM's after a live update) and a shell prepared over
    /// it. Checks the state against the memory and this host before any vCPU exists.
    /// `appendToConsoleLog` keeps what the log holds (a live update continues the same log);
    /// `inheritedDevices` are the host sides the previous VMM kept across exec (a live update),
    /// by device name: disk images, vsock's listener, streams and connection table.
    package convenience init(
        continuing record: MachineStateRecord, memory: GuestMemoryMap, shell: MachineShell,
        consoleLogPath: String? = nil, appendToConsoleLog: Bool = false, inheritedDevices: [String: VirtioHandover] = [:]
    ) throws(MachineError) {
        try SavedStateCheck.wellFormed(record)
        let saved = record.configuration
        guard memory.regions.map(\.name) == saved.regionNames,
              let ram = memory.region(named: "ram"), ram.sizeInBytes == saved.memorySizeInBytes
        else { throw .incompatibleState("restored memory regions do not match the saved state's \(saved.regionNames)") }
        try record.checkCPUFeatures(supported: shell.supportedCPUID)
        var configuration = MachineConfiguration(
            kernelPath: saved.kernelPath, commandLine: saved.commandLine, memorySizeInBytes: saved.memorySizeInBytes,
            cpuCount: saved.cpuCount, backings: Dictionary(uniqueKeysWithValues: memory.regions.map { ($0.name, $0.backing) }))
        // The devices come back as they were built, their files reopened by path.
        configuration.disks = (record.virtio ?? []).compactMap(\.disk)
        configuration.networks = (record.virtio ?? []).compactMap(\.network)
        configuration.entropy = record.virtio?.first { $0.type == .entropy }?.entropy
        configuration.vsock = record.virtio?.first { $0.type == .vsock }?.vsock
        configuration.balloon = record.virtio?.first { $0.type == .balloon }?.balloon
        configuration.inheritedDevices = inheritedDevices
        configuration.generationID = record.generationID
        try self.init(
            configuration: configuration, memory: memory, shell: shell, consoleLogPath: consoleLogPath,
            appendToConsoleLog: appendToConsoleLog
        ) { (vcpu, _) throws(KVMError) in
            let cpuid = record.vcpus[Int(vcpu.id)].cpuid
            try vcpu.setCPUID(cpuid)
            return cpuid
        }
        // Memory before state: MSRs such as kvmclock's point KVM at guest pages.
        do { try shell.slots.wait() } catch { throw .kvm(error) }
        try applyState(record, timerWhenResumed: false, kept: inheritedDevices)
    }
}

extension MachineStateRecord {
    /// Decodes a snapshot's machine state (a section container, or the JSON of version 1 files)
    /// and checks it is well formed, naming the section or version problem before any other.
    package static func decode(_ bytes: [UInt8], snapshotPath: String) throws(MachineError) -> MachineStateRecord {
        try decode(bytes, from: "snapshot \(snapshotPath)")
    }

    /// The same for a state from elsewhere: `source` names it in messages ("the live update's handoff").
    package static func decode(_ bytes: [UInt8], from source: String) throws(MachineError) -> MachineStateRecord {
        let record: MachineStateRecord
        if StateSections.looksLikeContainer(bytes) {
            let what = "\(source) machine state"
            let sections: StateSections
            do { sections = try StateSections(decoding: bytes, what: what) } catch { throw .stateUnreadable("\(error)") }
            if let legacy = sections[StateSections.legacyMachineJSON] {
                guard sections.sections.count == 1 else {
                    throw .stateUnreadable("\(what) holds \(StateSections.legacyMachineJSON) beside other sections; expected it alone")
                }
                record = try decodeJSON(legacy.payload, from: source)
            } else {
                do { record = try MachineStateRecord(sections: sections, what: what) } catch { throw .stateUnreadable("\(error)") }
            }
        } else {
            record = try decodeJSON(bytes, from: source)
        }
        do { try SavedStateCheck.wellFormed(record) } catch {
            throw .stateUnreadable("\(source): \(error)")
        }
        return record
    }

    /// Checks the record fits the snapshot's regions (names, sizes, placements), so a restore can
    /// refuse a snapshot before it reads any memory.
    package func checkFits(snapshotRegions: [SnapshotRegionShape]) throws(MachineError) {
        try SavedStateCheck.regions(snapshotRegions, match: self)
    }

    /// Checks every saved vCPU's features are ones this host's KVM offers (`supported`, from
    /// KVM_GET_SUPPORTED_CPUID): a guest kernel that found a feature at boot would fault without it.
    package func checkCPUFeatures(supported: [CPUIDEntry]) throws(MachineError) {
        try SavedStateCheck.cpuFeatures(vcpus.map(\.cpuid), cpuCount: configuration.cpuCount, supported: supported)
    }

    /// The same, asking this host's KVM first: what a copy restore checks before it reads memory.
    package func checkCPUFeaturesOfThisHost() throws(MachineError) {
        try checkCPUFeatures(supported: try SavedStateCheck.hostCPUID())
    }

    /// The record as configuration and state sections, as a snapshot stores them.
    package func contents() throws(MachineError) -> SnapshotContents {
        do { return try sections() } catch { throw .stateEncoding("cannot encode the machine state: \(error)") }
    }

    /// The record as one section container (configuration and state), as a migration sends it and
    /// `decode` reads it: binary framing around small JSON payloads whose coding a VMM warms up
    /// ahead (`warmUpCoding`), so it costs a fraction of the record's own JSON.
    package func encodedSections() throws(MachineError) -> [UInt8] {
        let contents = try contents()
        return contents.configuration.merged(with: contents.state).encoded()
    }

    /// The JSON state of version 1 files (machine state version 2).
    private static func decodeJSON(_ bytes: [UInt8], from source: String) throws(MachineError) -> MachineStateRecord {
        struct VersionOnly: Decodable { var version: Int }
        let version: Int
        do { version = try JSONDecoder().decode(VersionOnly.self, from: Data(bytes)).version } catch {
            throw .stateUnreadable("\(source): the state section is not an Engram machine state (no version)")
        }
        guard version == currentVersion else {
            let newer = version > currentVersion ? "a newer Engram's " : ""
            throw .stateUnreadable(
                "\(source): machine state is \(newer)version \(version); this Engram reads version \(currentVersion)")
        }
        do { return try JSONDecoder().decode(MachineStateRecord.self, from: Data(bytes)) } catch {
            throw .stateUnreadable("\(source): the machine state does not decode: \(DecodingProblem.describe(error))")
        }
    }
}

/// A one-line account of a JSON decoding failure: the path of keys and what was wrong.
enum DecodingProblem {
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return keys.isEmpty ? "the top level" : keys
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)) lacks \(key.stringValue)"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

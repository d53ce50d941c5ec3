import FoundationEssentials
import Devices
import KVM
import SnapshotFormat

extension MachineStateRecord {
    /// The record as sections: the configuration (written before memory) and the state.
    package func sections() throws(SectionError) -> SnapshotContents {
        var state: [StateSection] = []
        for vcpu in vcpus {
            let section = VCPUSection(
                id: vcpu.id, cpuid: Base64.encode(KernelEntries.encode(vcpu.cpuid)),
                blocks: Dictionary(uniqueKeysWithValues: vcpu.blocks.map { ($0.key.rawValue, Base64.encode($0.value)) }),
                modelSpecificRegisters: Base64.encode(KernelEntries.encode(vcpu.modelSpecificRegisters)))
            state.append(try Self.section(MachineSections.vcpuPrefix + String(vcpu.id), MachineSections.vcpuVersion, section))
        }
        let chips = IRQChipSection(
            picMaster: Base64.encode(interruptControllers[.picMaster] ?? []), picSlave: Base64.encode(interruptControllers[.picSlave] ?? []),
            ioAPIC: Base64.encode(interruptControllers[.ioAPIC] ?? []))
        state.append(try Self.section(MachineSections.irqchip, chips))
        state.append(try Self.section(MachineSections.timer, TimerSection(pitState: Base64.encode(timer))))
        state.append(try Self.section(MachineSections.clock, ClockSection(kvmclockNanoseconds: ExactUInt64(clockNanoseconds))))
        state.append(try Self.section(MachineSections.serial, serial))
        state.append(try Self.section(MachineSections.keyboardController, keyboardController))
        state.append(try Self.section(MachineSections.powerControl, powerControl))
        if let generationID {
            state.append(try Self.section(MachineSections.generationID, GenerationIDSection(
                address: ExactUInt64(generationID.address), notifyGSI: generationID.notifyGSI)))
        }
        for device in virtio ?? [] {
            state.append(try Self.section(MachineSections.virtioPrefix + device.name, MachineSections.virtioVersion, VirtioSection(device)))
        }

        let features = (vcpus.first?.cpuid ?? []).filter { entry in
            [(1, 0), (7, 0), (0x8000_0001, 0)].contains { entry.function == $0.0 && entry.index == $0.1 }
        }
        let machine = ConfigurationSection(
            cpuCount: configuration.cpuCount, memorySizeInBytes: ExactUInt64(configuration.memorySizeInBytes),
            regionNames: configuration.regionNames, kernelPath: configuration.kernelPath, commandLine: configuration.commandLine,
            cpuFeatures: features, sections: state.map { SectionVersion(name: $0.name, version: $0.version) })
        return SnapshotContents(
            configuration: StateSections([try Self.section(MachineSections.configuration, machine)]), state: StateSections(state))
    }

    /// The record from sections (configuration and state in one container); refuses an unknown
    /// section, a newer version of a known one, and a missing one, naming it. `what` names the
    /// container in messages.
    init(sections: StateSections, what: String) throws(SectionError) {
        let machine: ConfigurationSection = try Self.payload(sections, MachineSections.configuration, what: what)
        var vcpus: [VCPUStateRecord] = []
        for section in sections.sections where section.name.hasPrefix(MachineSections.vcpuPrefix) {
            guard section.version <= MachineSections.vcpuVersion else {
                throw .newerVersion(what, section: section.name, version: section.version, readable: MachineSections.vcpuVersion)
            }
            let id: UInt32, cpuid: [CPUIDEntry], named: [String: String], registers: [ModelSpecificRegister]
            if section.version == 1 {
                let vcpu: VCPUSectionVersion1 = try Self.decode(section, what: what)
                (id, cpuid, named) = (vcpu.id, vcpu.cpuid, vcpu.blocks)
                registers = vcpu.modelSpecificRegisters.map { ModelSpecificRegister(index: $0.index, value: $0.value.value) }
            } else {
                let vcpu: VCPUSection = try Self.decode(section, what: what)
                (id, named) = (vcpu.id, vcpu.blocks)
                let leaves = try Self.bytes(vcpu.cpuid, section: section.name, field: "cpuid", what: what)
                guard let entries = KernelEntries.cpuid(leaves) else {
                    throw .payload(what, section: section.name, problem: "cpuid: \(leaves.count) bytes are not whole \(KernelEntries.cpuidEntryBytes)-byte kvm_cpuid_entry2 structs")
                }
                let msrs = try Self.bytes(vcpu.modelSpecificRegisters, section: section.name, field: "modelSpecificRegisters", what: what)
                guard let values = KernelEntries.registers(msrs) else {
                    throw .payload(what, section: section.name, problem: "modelSpecificRegisters: \(msrs.count) bytes are not whole \(KernelEntries.msrEntryBytes)-byte kvm_msr_entry structs")
                }
                (cpuid, registers) = (entries, values)
            }
            guard section.name == MachineSections.vcpuPrefix + String(id) else {
                throw .payload(what, section: section.name, problem: "holds vCPU \(id); expected the vCPU its name says")
            }
            var blocks: [VCPUStateBlock: [UInt8]] = [:]
            for (name, text) in named {
                guard let block = VCPUStateBlock(rawValue: name) else {
                    throw .payload(what, section: section.name, problem: "unknown block \(name)")
                }
                blocks[block] = try Self.bytes(text, section: section.name, field: name, what: what)
            }
            vcpus.append(VCPUStateRecord(id: id, cpuid: cpuid, blocks: blocks, modelSpecificRegisters: registers))
        }
        var virtio: [VirtioDeviceRecord] = []
        for section in sections.sections where section.name.hasPrefix(MachineSections.virtioPrefix) {
            guard section.version <= MachineSections.virtioVersion else {
                throw .newerVersion(what, section: section.name, version: section.version, readable: MachineSections.virtioVersion)
            }
            let payload: VirtioSection = try Self.decode(section, what: what)
            guard section.name == MachineSections.virtioPrefix + payload.name else {
                throw .payload(what, section: section.name, problem: "holds device \(payload.name); expected the device its name says")
            }
            guard let device = payload.record else {
                throw .payload(what, section: section.name, problem: "is a \(payload.type) device, which this Engram does not have")
            }
            virtio.append(device)
        }
        var generationID: GenerationIDDevice? = nil
        if sections[MachineSections.generationID.name] != nil {
            let saved: GenerationIDSection = try Self.payload(sections, MachineSections.generationID, what: what)
            generationID = GenerationIDDevice(address: saved.address.value, notifyGSI: saved.notifyGSI)
        }
        let known = Set(([MachineSections.configuration, MachineSections.generationID] + MachineSections.devices).map(\.name))
        for section in sections.sections where !known.contains(section.name) && !section.name.hasPrefix(MachineSections.vcpuPrefix)
            && !section.name.hasPrefix(MachineSections.virtioPrefix) {
            throw .unknownSection(what, section: section.name)
        }
        let chips: IRQChipSection = try Self.payload(sections, MachineSections.irqchip, what: what)
        let name = MachineSections.irqchip.name
        let timer: TimerSection = try Self.payload(sections, MachineSections.timer, what: what)
        let clock: ClockSection = try Self.payload(sections, MachineSections.clock, what: what)
        self.init(
            configuration: SavedConfiguration(
                cpuCount: machine.cpuCount, memorySizeInBytes: machine.memorySizeInBytes.value, regionNames: machine.regionNames,
                kernelPath: machine.kernelPath, commandLine: machine.commandLine),
            vcpus: vcpus.sorted { $0.id < $1.id },
            interruptControllers: [
                .picMaster: try Self.bytes(chips.picMaster, section: name, field: "picMaster", what: what),
                .picSlave: try Self.bytes(chips.picSlave, section: name, field: "picSlave", what: what),
                .ioAPIC: try Self.bytes(chips.ioAPIC, section: name, field: "ioAPIC", what: what),
            ],
            timer: try Self.bytes(timer.pitState, section: MachineSections.timer.name, field: "pitState", what: what),
            clockNanoseconds: clock.kvmclockNanoseconds.value,
            serial: try Self.payload(sections, MachineSections.serial, what: what),
            keyboardController: try Self.payload(sections, MachineSections.keyboardController, what: what),
            powerControl: try Self.payload(sections, MachineSections.powerControl, what: what),
            virtio: virtio.isEmpty ? nil : virtio, generationID: generationID)
    }

    /// Encodes and decodes every kind of section once, through a sample machine whose vCPU has
    /// `cpuid`: the first JSON coding of a type in a process pays for the runtime's type and
    /// conformance lookups (about 2 ms here), which a standby VMM, or a transfer's new VMM, pays
    /// before the guest waits rather than while it does. Returns the sample, for warming the
    /// coding of what carries one (a transfer's handoff).
    @discardableResult
    package static func warmUpCoding(cpuid: [CPUIDEntry]) -> MachineStateRecord {
        let sample = warmUpSample(cpuid: cpuid)
        if let contents = try? sample.sections() {
            _ = try? MachineStateRecord(sections: contents.configuration.merged(with: contents.state), what: "warm-up")
        }
        return sample
    }

    /// A machine of one vCPU with every part a state has but virtio devices, its kernel structs zeros.
    static func warmUpSample(cpuid: [CPUIDEntry]) -> MachineStateRecord {
        struct Unwired: InterruptLine { func set(level: Bool) {} }
        let block = [UInt8](repeating: 0, count: 512)
        let vcpu = VCPUStateRecord(
            id: 0, cpuid: cpuid, blocks: Dictionary(uniqueKeysWithValues: VCPUStateBlock.allCases.map { ($0, block) }),
            modelSpecificRegisters: [ModelSpecificRegister(index: 0x10, value: 1)])
        return MachineStateRecord(
            configuration: SavedConfiguration(cpuCount: 1, memorySizeInBytes: 1 << 30, regionNames: ["ram"], kernelPath: "", commandLine: nil),
            vcpus: [vcpu], interruptControllers: [.picMaster: block, .picSlave: block, .ioAPIC: block], timer: block, clockNanoseconds: 1,
            serial: Serial8250(interrupt: Unwired(), output: { _ in }).saveState(),
            keyboardController: I8042(interrupt: Unwired(), onReset: {}).saveState(),
            powerControl: PowerControlPort(onPowerOff: {}).saveState(),
            generationID: GenerationIDDevice(address: 0x1000, notifyGSI: 9))
    }

    private static func section<T: Encodable>(_ kind: SectionKind, _ value: T) throws(SectionError) -> StateSection {
        try section(kind.name, kind.version, value)
    }

    private static func section<T: Encodable>(_ name: String, _ version: UInt32, _ value: T) throws(SectionError) -> StateSection {
        do { return StateSection(name: name, version: version, payload: Array(try JSONEncoder().encode(value))) } catch {
            throw .payload("the machine state", section: name, problem: "cannot be encoded: \(error)")
        }
    }

    private static func payload<T: Decodable>(_ sections: StateSections, _ kind: SectionKind, what: String) throws(SectionError) -> T {
        guard let section = sections[kind.name] else { throw .missingSection(what, section: kind.name) }
        guard section.version <= kind.version else {
            throw .newerVersion(what, section: kind.name, version: section.version, readable: kind.version)
        }
        return try decode(section, what: what)
    }

    private static func decode<T: Decodable>(_ section: StateSection, what: String) throws(SectionError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(section.payload)) } catch {
            throw .payload(what, section: section.name, problem: DecodingProblem.describe(error))
        }
    }

    private static func bytes(_ text: String, section: String, field: String, what: String) throws(SectionError) -> [UInt8] {
        guard let bytes = Base64.decode(text) else { throw .payload(what, section: section, problem: "\(field) is not base64") }
        return bytes
    }
}

/// Base64 of kernel structs in section payloads.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { Array($0) } }
}

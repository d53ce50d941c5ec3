import Foundation
import Devices
import KVM
import Machine
import SnapshotFormat
import Testing
import TestSupport

/// Saving and loading a paused machine's vCPU, irqchip, timer, clock and device state, with the test kernel.
@Suite(.enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct MachineStateTests {
    let directory = TemporaryDirectory()

    func waitForLog(_ path: String, containing text: String, after offset: Int = 0) throws -> String {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let bytes = Array(((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()).dropFirst(offset))
            if let line = ConsoleLines.first(containing: text, in: bytes) { return line }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw GuestProcess.Timeout(description: "no \(text) in the console log")
    }

    @Test func stateSurvivesSaveAndLoadAndTheGuestRunsOn() throws {
        let log = directory.path("console.log")
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 128 << 20, cpuCount: 2),
                                  consoleLogPath: log)
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        _ = try waitForLog(log, containing: "READY")
        #expect(machine.pause())
        let saved = try machine.saveState()
        #expect(saved.vcpus.count == 2)
        #expect(saved.vcpus[0].blocks.count == 9)
        #expect(saved.vcpus[0].modelSpecificRegisters.contains { $0.index == 0x10 })  // the TSC is carried
        #expect(saved.interruptControllers.count == 3)

        let decoded = try JSONDecoder().decode(MachineStateRecord.self, from: JSONEncoder().encode(saved))
        #expect(decoded == saved)
        try machine.restoreState(decoded)
        let again = try machine.saveState()
        #expect(again.vcpus.map { $0.blocks[.registers] } == saved.vcpus.map { $0.blocks[.registers] })
        #expect(again.vcpus.map { $0.blocks[.specialRegisters] } == saved.vcpus.map { $0.blocks[.specialRegisters] })

        #expect(machine.resume())
        let offset = (try? Data(contentsOf: URL(fileURLWithPath: log)).count) ?? 0
        _ = machine.consoleInput(Array("ticks\r".utf8))
        let line = try waitForLog(log, containing: "TICKS ", after: offset)
        #expect(Int(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0 > 0)
    }

    @Test func stateCannotBeSavedWhileRunning() throws {
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20),
                                  consoleLogPath: directory.path("log"))
        #expect(throws: MachineError.self) { try machine.saveState() }
    }

    /// Random damage to a real saved state's JSON: decoding either refuses it with one line
    /// naming the snapshot, or yields a well-formed record. Never a crash.
    @Test func damagedStateIsRefusedOrWellFormed() throws {
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20, cpuCount: 2))
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        #expect(machine.pause())
        let original = Array(try JSONEncoder().encode(try machine.saveState()))
        #expect(try MachineStateRecord.decode(original, snapshotPath: "x.snap").vcpus.count == 2)
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0..<400 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                let at = Int.random(in: 0..<bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &generator)
                case 1: bytes.remove(at: at)
                default: bytes = Array(bytes.prefix(at))
                }
                if bytes.isEmpty { break }
            }
            do {
                let record = try MachineStateRecord.decode(bytes, snapshotPath: "x.snap")
                #expect(record.vcpus.count == record.configuration.cpuCount)
            } catch {
                refused += 1
                #expect(error.description.hasPrefix("snapshot x.snap") && !error.description.contains("\n"), "\(error)")
            }
        }
        #expect(refused > 200)
    }

    /// The state as per-device sections: it round-trips; an unknown section, a newer version of a
    /// known one, or a missing one is refused naming it; 64-bit values stay exact.
    @Test func sectionsRoundTripAndRefuseWhatThisEngramCannotRead() throws {
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20, cpuCount: 2))
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        #expect(machine.pause())
        var saved = try machine.saveState()
        saved.clockNanoseconds = (1 << 60) + 1  // not representable as a double
        let contents = try saved.contents()
        #expect(contents.configuration.sections.map(\.name) == ["machine"])
        #expect(contents.state.sections.map(\.name) == ["vcpu.0", "vcpu.1", "irqchip", "pit", "clock", "serial", "i8042", "power-control", "vmgenid"])
        let clock = try #require(contents.state["clock"])
        #expect(String(decoding: clock.payload, as: UTF8.self).contains("\"1152921504606846977\""))
        let all = contents.configuration.merged(with: contents.state)
        #expect(saved.generationID == .standard)
        #expect(try MachineStateRecord.decode(all.encoded(), snapshotPath: "x.snap") == saved)
        #expect(try JSONDecoder().decode(MachineStateRecord.self, from: JSONEncoder().encode(saved)) == saved, "as a fork sends it")
        // A state from before Engram had the device reads as a guest without one.
        let withoutDevice = StateSections(all.sections.filter { $0.name != "vmgenid" })
        #expect(try MachineStateRecord.decode(withoutDevice.encoded(), snapshotPath: "x.snap").generationID == nil)

        func refusal(_ sections: [StateSection]) -> String? {
            do { _ = try MachineStateRecord.decode(StateSections(sections).encoded(), snapshotPath: "x.snap"); return nil } catch {
                return error.description
            }
        }
        let unknown = refusal(all.sections + [StateSection(name: "virtio-gpu", version: 1, payload: [])])
        #expect(unknown?.contains("virtio-gpu") == true && unknown?.contains("does not know") == true)
        let newer = refusal(all.sections.map { $0.name == "serial" ? StateSection(name: "serial", version: 2, payload: $0.payload) : $0 })
        #expect(newer?.contains("serial") == true && newer?.contains("version 2") == true)
        let missing = refusal(all.sections.filter { $0.name != "pit" })
        #expect(missing?.contains("pit") == true)
        let misnamed = refusal(all.sections.map { $0.name == "vcpu.1" ? StateSection(name: "vcpu.7", version: $0.version, payload: $0.payload) : $0 })
        #expect(misnamed?.contains("vcpu.7") == true)

        // vcpu.N version 2 holds CPUID leaves and MSRs as base64 kernel structs; version 1 (JSON
        // objects, as earlier Engrams wrote it) still reads to the same state.
        func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * $1) } }
        let version1 = try all.sections.map { section -> StateSection in
            guard section.name.hasPrefix("vcpu.") else { return section }
            #expect(section.version == 2)
            var vcpu = try #require(try JSONSerialization.jsonObject(with: Data(section.payload)) as? [String: Any])
            let cpuidText = try #require(vcpu["cpuid"] as? String)
            let cpuid = try #require(Data(base64Encoded: cpuidText).map { Array($0) })
            vcpu["cpuid"] = stride(from: 0, to: cpuid.count, by: 40).map { at in
                Dictionary(uniqueKeysWithValues: zip(["function", "index", "flags", "eax", "ebx", "ecx", "edx"], (0..<7).map { u32(cpuid, at + 4 * $0) }))
            }
            let msrsText = try #require(vcpu["modelSpecificRegisters"] as? String)
            let msrs = try #require(Data(base64Encoded: msrsText).map { Array($0) })
            vcpu["modelSpecificRegisters"] = stride(from: 0, to: msrs.count, by: 16).map { at in
                ["index": u32(msrs, at), "value": String(UInt64(u32(msrs, at + 8)) | UInt64(u32(msrs, at + 12)) << 32)] as [String: Any]
            }
            return StateSection(name: section.name, version: 1, payload: Array(try JSONSerialization.data(withJSONObject: vcpu)))
        }
        #expect(try MachineStateRecord.decode(StateSections(version1).encoded(), snapshotPath: "x.snap") == saved)
        let torn = refusal(all.sections.map { section in
            guard section.name == "vcpu.0", var vcpu = try? JSONSerialization.jsonObject(with: Data(section.payload)) as? [String: Any] else { return section }
            vcpu["modelSpecificRegisters"] = Data([1, 2, 3]).base64EncodedString()
            return StateSection(name: section.name, version: 2, payload: Array((try? JSONSerialization.data(withJSONObject: vcpu)) ?? Data()))
        })
        #expect(torn?.contains("modelSpecificRegisters: 3 bytes are not whole 16-byte kvm_msr_entry structs") == true, "\(String(describing: torn))")
    }

    /// A machine with virtio devices saves one `virtio.NAME` section per device, with the disk it
    /// serves and its transport; the state round-trips through sections and through the JSON a
    /// live update hands over, and a newer or misnamed device section is refused naming it.
    /// The warm-up's sample goes through every kind of section but virtio's and comes back the
    /// same: a warm-up that failed part-way would leave the first real decoding cold, silently.
    @Test func theWarmUpSampleRoundTripsThroughEverySection() throws {
        let sample = MachineStateRecord.warmUpCoding(cpuid: [])
        let decoded = try MachineStateRecord.decode(try sample.encodedSections(), from: "the warm-up sample")
        #expect(decoded == sample)
        #expect(decoded.generationID != nil && decoded.vcpus.first?.blocks.count == VCPUStateBlock.allCases.count)
    }

    @Test func virtioDevicesSaveASectionEach() throws {
        let disk = directory.path("disk.img")
        FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20))
        var configuration = MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20, cpuCount: 1)
        configuration.disks = [DiskConfiguration(path: disk, readOnly: true, identifier: "d1")]
        configuration.entropy = EntropyConfiguration(rate: 1000, burst: 100)
        let machine = try Machine(configuration: configuration)
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        #expect(machine.pause())
        let saved = try machine.saveState()
        let devices = try #require(saved.virtio)
        #expect(devices.map(\.name) == ["blk0", "rng0"])
        #expect(devices[0].disk == configuration.disks[0] && devices[0].capacitySectors == 2048)
        #expect(devices[1].entropy == configuration.entropy)
        let contents = try saved.contents()
        #expect(contents.state.sections.suffix(2).map(\.name) == ["virtio.blk0", "virtio.rng0"])
        let payload = String(decoding: try #require(contents.state["virtio.blk0"]).payload, as: UTF8.self)
        #expect(payload.contains("\"driverFeatures\":\"") && payload.contains("\"capacitySectors\":\"2048\""), "u64 values are decimal strings")
        let all = contents.configuration.merged(with: contents.state)
        #expect(try MachineStateRecord.decode(all.encoded(), snapshotPath: "x.snap") == saved)
        #expect(try JSONDecoder().decode(MachineStateRecord.self, from: JSONEncoder().encode(saved)) == saved)
        func refusal(_ sections: [StateSection]) -> String? {
            do { _ = try MachineStateRecord.decode(StateSections(sections).encoded(), snapshotPath: "x.snap"); return nil } catch {
                return error.description
            }
        }
        let newer = refusal(all.sections.map { $0.name == "virtio.rng0" ? StateSection(name: $0.name, version: 2, payload: $0.payload) : $0 })
        #expect(newer?.contains("virtio.rng0") == true && newer?.contains("version 2") == true)
        let misnamed = refusal(all.sections.map { $0.name == "virtio.rng0" ? StateSection(name: "virtio.rng7", version: 1, payload: $0.payload) : $0 })
        #expect(misnamed?.contains("virtio.rng7") == true)
        // A network interface's section: its tap by name and the guest's MAC come back, and a
        // restore may move it to another tap but not change the MAC the driver read at boot.
        var withNetwork = saved
        let mac = try #require(MACAddress("02:00:00:aa:bb:cc"))
        var interface = devices[1]
        interface.name = "net0"
        interface.type = .network
        interface.entropy = nil
        interface.network = NetworkConfiguration(backend: .tap("tap-a"), mac: mac)
        withNetwork.virtio?.append(interface)
        let networkContents = try withNetwork.contents()
        let networkPayload = String(decoding: try #require(networkContents.state["virtio.net0"]).payload, as: UTF8.self)
        #expect(networkPayload.contains(#""mac":"02:00:00:aa:bb:cc""#) && networkPayload.contains(#""tap":"tap-a""#), "\(networkPayload)")
        let networkAll = networkContents.configuration.merged(with: networkContents.state)
        #expect(try MachineStateRecord.decode(networkAll.encoded(), snapshotPath: "x.snap") == withNetwork)
        let moved = try withNetwork.replacingNetworks([NetworkConfiguration(backend: .tap("tap-b"))])
        #expect(moved.virtio?.last?.network == NetworkConfiguration(backend: .tap("tap-b"), mac: mac))
        #expect(throws: MachineError.self) { try withNetwork.replacingNetworks([NetworkConfiguration(backend: .tap("b"), mac: MACAddress("02:00:00:00:00:01"))]) }
        #expect(throws: MachineError.self) { try saved.replacingNetworks([NetworkConfiguration(backend: .tap("b"))]) }
        let overridden = try saved.replacingDisks([DiskConfiguration(path: "/other.img")])
        #expect(overridden.virtio?[0].disk?.path == "/other.img")
        #expect(throws: MachineError.self) { try saved.replacingDisks([DiskConfiguration(path: "/a"), DiskConfiguration(path: "/b")]) }
    }

    /// Random damage to a real saved state's section container: refused in one line, or well formed.
    @Test func damagedSectionsAreRefusedOrWellFormed() throws {
        let machine = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20, cpuCount: 2))
        try machine.start()
        defer { machine.finish(.shutdownRequested) }
        #expect(machine.pause())
        let original = try machine.encodedMachineState()
        var generator = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0..<300 {
            var bytes = original
            let at = Int.random(in: 0..<bytes.count, using: &generator)
            if Bool.random(using: &generator) { bytes[at] ^= UInt8.random(in: 1...255, using: &generator) } else { bytes = Array(bytes.prefix(at)) }
            do {
                let record = try MachineStateRecord.decode(bytes, snapshotPath: "x.snap")
                #expect(record.vcpus.count == record.configuration.cpuCount)
            } catch {
                refused += 1
                #expect(error.description.hasPrefix("snapshot x.snap") && !error.description.contains("\n"), "\(error)")
            }
        }
        #expect(refused > 250)
    }
}

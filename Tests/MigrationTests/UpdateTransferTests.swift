import Foundation
import GuestMemory
import LinuxSystem
import Machine
@testable import Migration
import Testing
import TestSupport

/// The two ends of a transfer-mode update in one process: the memory and then the paused
/// machine go over a socket pair, and what arrives names the descriptors that arrived.
@Suite(.enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct UpdateTransferTests {
    /// A test-kernel machine that ran a moment, paused; the caller finishes it.
    static func pausedMachine(tag: String) throws -> Machine {
        let machine = try Machine(configuration: MachineConfiguration(
            kernelPath: ProjectPaths.testKernel, commandLine: "cpus=1 -- tag \(tag)", memorySizeInBytes: 64 << 20, cpuCount: 1))
        try machine.start()
        Thread.sleep(forTimeInterval: 0.3)
        #expect(machine.pause())
        return machine
    }

    static func handoff(of machine: Machine, regions: [InheritedRegion]) throws -> UpdateHandoff {
        UpdateHandoff(
            update: 1, updatesCompleted: 0, fromVersion: "test", binary: "/bin/true", statePath: "/tmp/unused",
            pausedAtNanoseconds: LiveUpdateSource.monotonicNanoseconds(), saveMilliseconds: 0, resume: true, regions: regions,
            controlSocket: nil, consoleLogPath: nil, terminalMode: nil, machine: try machine.saveState())
    }

    @Test func theMemoryAndTheMachineArriveWithDescriptorsThatWork() throws {
        let old = try Self.pausedMachine(tag: "transferred")
        defer { old.finish(.shutdownRequested) }
        let handoff = try Self.handoff(of: old, regions: try LiveUpdateSource.inheritedRegions(of: old.memory))

        let (channel, theirs) = try DescriptorChannel.pair(peer: "the new VMM")
        let oldSide = TransferLink(channel), newSide = TransferLink(DescriptorChannel(taking: theirs, peer: "the running VMM"))
        try oldSide.send(.handoff(handoff), descriptors: handoff.descriptors)
        let (message, arrived) = try newSide.receive(timeoutMilliseconds: 5000)
        guard case .handoff(let sent) = message else { Issue.record("got \(message)"); return }
        #expect(sent == handoff)
        let here = try sent.receiving(arrived)
        #expect(here.regions.map(\.descriptor) != handoff.regions.map(\.descriptor), "the numbers are this end's")
        let memory = try LiveUpdateTarget.memory(of: here)
        let ram = try #require(memory.region(named: "ram"))
        try old.memory.regions[0].write([0x6b], at: RegionOffset(0x3fe000))
        #expect(try ram.read(count: 1, at: RegionOffset(0x3fe000)) == [0x6b], "the same pages, not a copy")

        // Fewer descriptors than the handoff names is refused, naming both counts.
        try oldSide.send(.handoff(handoff))
        let (_, none) = try newSide.receive(timeoutMilliseconds: 5000)
        #expect { _ = try sent.receiving(none) } throws: { "\($0)".contains("names 1 descriptors; 0 arrived") }
        try newSide.send(.running(downtimeMilliseconds: 1.5))
        #expect(try oldSide.receive(timeoutMilliseconds: 5000).0 == .running(downtimeMilliseconds: 1.5))
    }

    /// The machine goes as a section container to a binary that reads one and as the record's
    /// JSON to an older one; either arrives as the same record, and a damaged container is
    /// refused in one line naming the handoff.
    @Test func theMachineGoesAsSectionsOrAsTheRecordsJSON() throws {
        let machine = try Self.pausedMachine(tag: "sections")
        defer { machine.finish(.shutdownRequested) }
        var handoff = try Self.handoff(of: machine, regions: [])
        #expect(UpdateHandoff.features.contains(UpdateHandoff.machineSectionsFeature))
        for inSections in [false, true] {
            handoff.machineInSections = inSections
            let encoded = try JSONEncoder().encode(handoff)
            let object = try #require(try JSONSerialization.jsonObject(with: encoded) as? [String: Any])
            #expect((object["machine"] is String) == inSections, "machine in sections: \(inSections)")
            let decoded = try JSONDecoder().decode(UpdateHandoff.self, from: encoded)
            #expect(decoded.machine == handoff.machine)
            #expect(decoded.machineInSections == inSections)
        }
        var object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(handoff)) as? [String: Any])
        object["machine"] = Data("not sections".utf8).base64EncodedString()
        let damaged = try JSONSerialization.data(withJSONObject: object)
        #expect { _ = try JSONDecoder().decode(UpdateHandoff.self, from: damaged) } throws: { "\($0)".contains("the live update's handoff") }
    }
}

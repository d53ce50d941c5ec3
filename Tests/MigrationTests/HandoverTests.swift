import Foundation
import GuestMemory
import LinuxSystem
import Machine
@testable import Migration
import Testing
import TestSupport

/// The handoff file and the memory and machine a new VMM rebuilds from it, in one process:
/// what `engram resume-update` does after exec, without the exec.
@Suite(.enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct HandoverTests {
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

    func handoff(for machine: Machine, descriptors: [CInt], statePath: String, log: String?) throws -> UpdateHandoff {
        var regions = try LiveUpdateSource.inheritedRegions(of: machine.memory)
        for index in regions.indices { regions[index].descriptor = descriptors[index] }
        return UpdateHandoff(
            update: 1, updatesCompleted: 0, fromVersion: "test", binary: "/bin/true", statePath: statePath,
            pausedAtNanoseconds: LiveUpdateSource.monotonicNanoseconds(), saveMilliseconds: 0, resume: true, regions: regions,
            controlSocket: nil, consoleLogPath: log, terminalMode: nil, machine: try machine.saveState())
    }

    /// A paused machine handed over through a handoff file and duplicated memory descriptors
    /// continues in a second machine: same memory pages (a write through one mapping shows in
    /// the other), the tag still in place, the tick count carried on, the log appended to.
    @Test func aMachineRebuiltFromAHandoffContinuesOnTheSameMemory() throws {
        let log = directory.path("console.log")
        let old = try Machine(
            configuration: MachineConfiguration(
                kernelPath: ProjectPaths.testKernel, commandLine: "cpus=2 -- tag handed-over; ticks", memorySizeInBytes: 64 << 20,
                cpuCount: 2),
            consoleLogPath: log)
        try old.start()
        let before = try waitForLog(log, containing: "TICKS ")
        #expect(old.pause())
        let duplicates = old.memory.regions.map { dup($0.fileDescriptor!) }
        let written = try handoff(for: old, descriptors: duplicates, statePath: directory.path("vm.update"), log: log)
        try written.write()
        old.finish(.shutdownRequested)
        let mode = try FileManager.default.attributesOfItem(atPath: written.statePath)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let read = try UpdateHandoff.read(from: written.statePath)
        #expect(read == written)
        // Counts the new VMM counts on from, and a pause time from a clock it cannot check, are
        // refused or clamped rather than trapping (which would lose the guest).
        var crafted = read
        crafted.updatesCompleted = .max
        crafted.statePath = directory.path("crafted.update")
        try crafted.write()
        #expect(throws: LiveUpdateError.handoff(path: crafted.statePath, reason: "update \(read.update) with \(Int.max) completed: expected counts from 0 to \(Int32.max)")) {
            try UpdateHandoff.read(from: crafted.statePath)
        }
        crafted.pausedAtNanoseconds = .max
        #expect(crafted.pausedMilliseconds(at: 5) == 0)
        let memory = try LiveUpdateTarget.memory(of: read)
        let ram = try #require(memory.region(named: "ram"))
        #expect(try ram.read(count: 12, at: RegionOffset(0x300000)) == Array("handed-over\0".utf8))
        try old.memory.regions[0].write([0x5a], at: RegionOffset(0x3ff000))
        #expect(try ram.read(count: 1, at: RegionOffset(0x3ff000)) == [0x5a])

        let offset = try Data(contentsOf: URL(fileURLWithPath: log)).count
        let new = try LiveUpdateTarget.machine(of: read, memory: memory)
        try new.start()
        defer { new.finish(.shutdownRequested) }
        _ = new.consoleInput(Array("ticks\r".utf8))
        let after = try waitForLog(log, containing: "TICKS ", after: offset)
        let ticks = { (line: String) in Int(line.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? -1 }
        #expect(ticks(after) >= ticks(before))
        #expect(try Data(contentsOf: URL(fileURLWithPath: log)).count > offset)  // appended, not truncated
    }

    @Test func aMachineHandedOverPausedStaysPausedUntilResumed() throws {
        let old = try Machine(configuration: MachineConfiguration(kernelPath: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20))
        try old.start(paused: true)
        #expect(old.runState == .paused)
        let record = try old.saveState()
        old.finish(.shutdownRequested)
        #expect(record.vcpus.count == 1)
    }

    @Test func privateMemoryCannotBeHandedOver() throws {
        let anonymous = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .anonymous)
        let memory = GuestMemoryMap(regions: [anonymous], mappings: [])
        #expect(throws: LiveUpdateError.memoryNotInheritable(
            region: "ram", reason: "is private anonymous memory (--anonymous-memory), which does not survive exec")) {
            try LiveUpdateSource.inheritedRegions(of: memory)
        }
    }

    @Test func badHandoffFilesAreRefusedByName() throws {
        let path = directory.path("vm.update")
        try Data("{\"version\": 7}".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: LiveUpdateError.handoffVersion(path: path, found: 7, expected: UpdateHandoff.currentVersion)) {
            try UpdateHandoff.read(from: path)
        }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: LiveUpdateError.handoff(path: path, reason: "not an Engram update handoff (no version)")) {
            try UpdateHandoff.read(from: path)
        }
        #expect(throws: LiveUpdateError.self) { try UpdateHandoff.read(from: directory.path("missing")) }
    }

    @Test func anInheritedDescriptorOfTheWrongSizeIsRefused() throws {
        let region = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd)
        #expect(throws: GuestMemoryError.self) {
            _ = try GuestRegion(name: "ram", sizeInBytes: 2 << 20, backing: .memfd, adopting: dup(region.fileDescriptor!), path: nil)
        }
        let adopted = try GuestRegion(name: "ram", sizeInBytes: 1 << 20, backing: .memfd, adopting: dup(region.fileDescriptor!), path: nil)
        #expect(ProcessImage.isCloseOnExec(adopted.fileDescriptor!) == true)
        #expect(ProcessImage.setCloseOnExec(adopted.fileDescriptor!, false))
        #expect(ProcessImage.isCloseOnExec(adopted.fileDescriptor!) == false)
    }
}

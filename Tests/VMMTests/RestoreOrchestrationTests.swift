import Foundation
import GuestMemory
import LinuxSystem
import Machine
import Paging
import Testing
import TestSupport
@testable import VMM

/// The restore library in process, on real KVM and the test kernel: a snapshot of a running
/// guest comes back in every memory mode with the same memory, and carries on.
@Suite(.serialized, .enabled(if: TestEnvironment.hasKVM && TestEnvironment.hasTestKernel, "needs /dev/kvm and the test kernel"))
struct RestoreOrchestrationTests {
    let directory = TemporaryDirectory()

    private func waitForLog(_ path: String, containing text: String, after offset: Int = 0) throws -> String {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let bytes = Array(((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()).dropFirst(offset))
            if let line = ConsoleLines.first(containing: text, in: bytes) { return line }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw GuestProcess.Timeout(description: "no \(text) in \(path)")
    }

    /// A paused test kernel that filled some memory, and its full snapshot.
    private func snapshotOfAGuest() throws -> (Machine, String) {
        let log = directory.path("source.log")
        var boot = BootRequest(kernel: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20)
        boot.commandLine = "console=ttyS0 fill 8 3"
        let machine = try Machine(configuration: try boot.machineConfiguration(), consoleLogPath: log)
        try machine.start()
        _ = try waitForLog(log, containing: "READY")
        #expect(machine.pause())
        let path = directory.path("guest.snap")
        _ = try machine.writeSnapshot(to: path, resume: false)
        return (machine, path)
    }

    private func sameMemory(_ a: GuestMemoryMap, _ b: GuestMemoryMap) throws -> Bool {
        guard a.regions.count == b.regions.count else { return false }
        for (left, right) in zip(a.regions, b.regions) {
            guard left.sizeInBytes == right.sizeInBytes else { return false }
            var offset: UInt64 = 0
            while offset < left.sizeInBytes {
                let count = Int(min(4 << 20, left.sizeInBytes - offset))
                guard try left.read(count: count, at: RegionOffset(offset)) == right.read(count: count, at: RegionOffset(offset)) else {
                    return false
                }
                offset += UInt64(count)
            }
        }
        return true
    }

    @Test func everyMemoryModeRestoresTheSameMemoryAndTheGuestRunsOn() throws {
        let (source, path) = try snapshotOfAGuest()
        defer { source.finish(.shutdownRequested) }
        for mode in [RestoreMode.copy, .map, .lazy] {
            var request = RestoreRequest(snapshot: path)
            request.memory = mode
            let log = directory.path("restored-\(mode.rawValue).log")
            request.consoleLog = log
            let vm = try VMRestore.build(request)
            defer { vm.machine.finish(.shutdownRequested) }
            if let fill = vm.fill {
                try fill.start { Issue.record("lazy fill failed: \($0)") }
                #expect(fill.waitUntilFilled())
            }
            #expect(try sameMemory(vm.machine.memory, source.memory), "\(mode)")
            #expect(vm.controller.vmInfo().vcpus == 1)
            #expect(vm.source.fileCount == 1)
            try vm.machine.start()
            _ = vm.machine.consoleInput(Array("ticks\r".utf8))
            _ = try waitForLog(log, containing: "TICKS ")
            vm.fill?.stop()
        }
    }

    @Test func aMissingSnapshotIsOneLineNamingIt() {
        let path = directory.path("absent.snap")
        let error = #expect(throws: VMMError.self) { _ = try VMRestore.build(RestoreRequest(snapshot: path)) }
        #expect(error?.description.contains("absent.snap") == true)
        #expect(error?.description.contains("\n") == false)
    }

    @Test func aRegionTheSnapshotLacksIsRefusedBeforeMemoryIsRead() throws {
        let (source, path) = try snapshotOfAGuest()
        defer { source.finish(.shutdownRequested) }
        var request = RestoreRequest(snapshot: path)
        request.memory = .copy
        request.sharedMaps = ["rom": directory.path("vm.rom")]
        #expect(throws: VMMError.invalidRequest("no region named rom; regions are: ram")) { _ = try VMRestore.build(request) }
        request.sharedMaps = [:]
        request.display = directory.path("screen")
        #expect(throws: VMMError.invalidRequest("--display: the snapshot's VM has no display")) { _ = try VMRestore.build(request) }
    }
}

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
        try GuestFixture.waitForLog(path, containing: text, after: offset)
    }

    private func snapshotOfAGuest() throws -> (Machine, String) { try GuestFixture.snapshotOfAGuest(in: directory) }

    private func sameMemory(_ a: GuestMemoryMap, _ b: GuestMemoryMap) throws -> Bool { try GuestFixture.sameMemory(a, b) }

    @Test func everyMemoryModeRestoresTheSameMemoryAndTheGuestRunsOn() throws {
        let (source, path) = try snapshotOfAGuest()
        defer { source.finish(.shutdownRequested) }
        for mode in [RestoreMode.copy, .map, .lazy] {
            let vm = try GuestFixture.restoreAndRun(path, mode: mode, like: source, log: directory.path("restored-\(mode.rawValue).log"))
            defer { vm.machine.finish(.shutdownRequested) }
            #expect(vm.controller.vmInfo().vcpus == 1)
            #expect(vm.source.fileCount == 1)
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

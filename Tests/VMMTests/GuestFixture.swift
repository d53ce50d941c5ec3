import Foundation
import GuestMemory
import Machine
import Paging
import Testing
import TestSupport
@testable import VMM

/// A test kernel guest to snapshot and restore in process.
enum GuestFixture {
    static func waitForLog(_ path: String, containing text: String, after offset: Int = 0) throws -> String {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let bytes = Array(((try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data()).dropFirst(offset))
            if let line = ConsoleLines.first(containing: text, in: bytes) { return line }
            Thread.sleep(forTimeInterval: 0.02)
        }
        throw GuestProcess.Timeout(description: "no \(text) in \(path)")
    }

    /// A paused test kernel that filled some memory, and its full snapshot.
    static func snapshotOfAGuest(in directory: TemporaryDirectory, name: String = "guest.snap") throws -> (Machine, String) {
        let log = directory.path("source.log")
        var boot = BootRequest(kernel: ProjectPaths.testKernel, memorySizeInBytes: 64 << 20)
        boot.commandLine = "console=ttyS0 fill 8 3"
        let machine = try Machine(configuration: try boot.machineConfiguration(), consoleLogPath: log)
        try machine.start()
        _ = try waitForLog(log, containing: "READY")
        #expect(machine.pause())
        let path = directory.path(name)
        _ = try machine.writeSnapshot(to: path, resume: false)
        return (machine, path)
    }

    static func sameMemory(_ a: GuestMemoryMap, _ b: GuestMemoryMap) throws -> Bool {
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

    /// Restores `path` in `mode` (filling all of a lazy restore's memory), checks its memory is
    /// `source`'s, starts it and waits for the guest to answer on its console; returns the VM.
    static func restoreAndRun(
        _ path: String, mode: RestoreMode, like source: Machine, log: String
    ) throws -> RestoredVM {
        var request = RestoreRequest(snapshot: path)
        request.memory = mode
        request.consoleLog = log
        let vm = try VMRestore.build(request)
        if let fill = vm.fill {
            try fill.start { Issue.record("lazy fill failed: \($0)") }
            #expect(fill.waitUntilFilled())
        }
        #expect(try sameMemory(vm.machine.memory, source.memory), "\(mode)")
        try vm.machine.start()
        _ = vm.machine.consoleInput(Array("ticks\r".utf8))
        _ = try waitForLog(log, containing: "TICKS ")
        vm.fill?.stop()
        return vm
    }
}

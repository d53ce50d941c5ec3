import Paging
import Testing
@testable import VMM

/// Requests that cannot be carried out are refused in one line before anything is opened.
@Suite struct RequestValidationTests {
    private func restore(_ snapshot: String, _ change: (inout RestoreRequest) -> Void = { _ in }) -> RestoreRequest {
        var request = RestoreRequest(snapshot: snapshot)
        change(&request)
        return request
    }

    @Test(arguments: [
        ("tcp://127.0.0.1:1", RestoreMode.map, "--memory map needs a local snapshot"),
        ("s3://bucket/name", .map, "--memory map needs a local snapshot"),
    ])
    func mapNeedsALocalFile(snapshot: String, mode: RestoreMode, message: String) {
        let request = restore(snapshot) { $0.memory = mode; $0.security.secretFile = "/secret" }
        #expect(throws: VMMError.invalidRequest("\(message) file; restore from \(snapshot.hasPrefix("s3") ? "an object store" : "a page server") with --memory lazy or copy")) {
            try request.validate()
        }
    }

    @Test func pageServerNeedsASecret() {
        let request = restore("tcp://127.0.0.1:1") { $0.memory = .lazy }
        let error = #expect(throws: VMMError.self) { try request.validate() }
        #expect(error?.description.contains("--secret-file") == true)
    }

    @Test func workingSetAndClusterLimits() throws {
        try restore("a.snap") { $0.memory = .lazy; $0.recordWorkingSetSeconds = 2 }.validate()
        #expect(throws: VMMError.self) { try restore("a.snap") { $0.memory = .copy; $0.recordWorkingSetSeconds = 2 }.validate() }
        #expect(throws: VMMError.self) { try restore("a.snap") { $0.memory = .lazy; $0.recordWorkingSetSeconds = 601 }.validate() }
        #expect(throws: VMMError.self) { try restore("a.snap") { $0.faultClusterPages = 513 }.validate() }
        try restore("a.snap") { $0.faultClusterPages = 512 }.validate()
    }

    @Test func mappedMemoryCannotGoToOtherFiles() {
        #expect(throws: VMMError.self) { try restore("a.snap") { $0.sharedMaps = ["ram": "/dev/shm/x.ram"] }.validate() }
        #expect(throws: VMMError.self) { try restore("a.snap") { $0.display = "/tmp/screen" }.validate() }
    }

    @Test func bootRequestsNeedOneRAMBackingAndSaneSizes() throws {
        var request = BootRequest(kernel: "/kernel", memorySizeInBytes: 64 << 20)
        try request.validate()
        request.ramFile = "/ram"
        request.anonymousMemory = true
        #expect(throws: VMMError.self) { try request.validate() }
        request = BootRequest(kernel: "/kernel", memorySizeInBytes: 64 << 20)
        request.cpuCount = 0
        #expect(throws: VMMError.self) { try request.validate() }
        request.cpuCount = 1
        request.displaySize = "wide"
        #expect(throws: VMMError.self) { try request.validate() }
        request.displaySize = "640x480"
        request.display = "/tmp/screen"
        request.sharedMaps = ["framebuffer": "/dev/shm/fb"]
        #expect(throws: VMMError.self) { try request.validate() }
    }

    @Test func bootRequestsBecomeMachineConfigurations() throws {
        var request = BootRequest(kernel: "/kernel", memorySizeInBytes: 64 << 20)
        request.sharedMaps = ["ram": "/dev/shm/vm.ram"]
        request.cpuCount = 2
        let configuration = try request.machineConfiguration()
        #expect(configuration.cpuCount == 2 && configuration.memorySizeInBytes == 64 << 20)
        request.sharedMaps = ["rom": "/dev/shm/vm.rom"]
        #expect(throws: (any Error).self) { _ = try request.machineConfiguration() }
    }

    @Test func migrationPeersHostsLoseTheirPortAndBrackets() {
        #expect(VMReceive.host(of: "10.0.0.1:5000") == "10.0.0.1")
        #expect(VMReceive.host(of: "[::1]:5000") == "::1")
        #expect(VMReceive.host(of: "nohost") == "nohost")
    }
}

import ControlAPI
import Devices

/// A control-API request: the input's first line is "METHOD TARGET", the rest is the body.
/// Routed through every endpoint of a VM whose operations all answer, so each endpoint's
/// decoding and checks run to the end.
enum ControlInput {
    static let router = Router(control: AnsweringControl(), version: "fuzz")

    static func run(_ bytes: [UInt8]) {
        let newline = bytes.firstIndex(of: 10) ?? bytes.endIndex
        let head = String(decoding: bytes[..<newline], as: UTF8.self).split(separator: " ", maxSplits: 1)
        guard head.count == 2 else { return }
        let body = newline < bytes.endIndex ? Array(bytes[(newline + 1)...]) : []
        _ = router.respond(method: String(head[0]), target: String(head[1]), body: RequestBody(body))
    }
}

/// A VM that takes every request: the fuzzer reaches the code after each endpoint's checks.
struct AnsweringControl: VMControl {
    func vmInfo() -> VMInfo { VMInfo(state: "running", vcpus: 1, uptimeSeconds: 1, memorySizeInBytes: 1 << 20) }
    func memoryRegions() -> [MemoryRegionInfo] { [] }
    func pause() throws(VMControlError) {}
    func resume() throws(VMControlError) {}
    func shutdown() throws(VMControlError) {}
    func memoryStatistics() -> MemoryStatistics { MemoryStatistics() }
    func snapshot(_ request: SnapshotRequest) throws(VMControlError) -> SnapshotReport { throw .failed(operation: "snapshot", reason: "fuzz") }
    func update(_ request: UpdateRequest) throws(VMControlError) -> UpdateStart { throw .conflict(reason: "fuzz") }
    func updateStatus() -> UpdateStatus { UpdateStatus(status: "idle", pid: 0, version: "", binary: "", updatesCompleted: 0, last: nil) }
    func processorRegisters() throws(VMControlError) -> [ProcessorRegisters] { [] }
    func migrate(_ request: MigrationRequestBody) throws(VMControlError) -> MigrationStatus { MigrationStatus(status: "active") }
    func migrationStatus() -> MigrationStatus { MigrationStatus(status: "idle") }
    func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int { events.count }
    func devices() -> [DeviceInfo] { [] }
    func updateDisk(_ request: DiskUpdate) throws(VMControlError) -> DeviceInfo { throw .invalidRequest(reason: "no disk named \(request.name)") }
    func fork(_ request: ForkRequest) throws(VMControlError) -> ForkReport { throw .conflict(reason: "fuzz") }
    func reserveFork(_ request: ForkReserveRequest) throws(VMControlError) -> ForkReserveReport { throw .conflict(reason: "fuzz") }
    func balloon() throws(VMControlError) -> BalloonInfo { throw .invalidRequest(reason: "fuzz") }
    func setBalloon(_ update: BalloonUpdate) throws(VMControlError) -> BalloonInfo { throw .invalidRequest(reason: "fuzz") }
    func balloonStatistics() throws(VMControlError) -> BalloonStatisticsInfo { throw .invalidRequest(reason: "fuzz") }
    func setBalloonStatistics(_ update: BalloonStatisticsUpdate) throws(VMControlError) -> BalloonInfo { throw .invalidRequest(reason: "fuzz") }
}

enum FramebufferInput {
    static func run(_ bytes: [UInt8]) {
        _ = FramebufferHeader.decode(bytes, fileSize: bytes.count, name: "fuzz input")
        if let text = String(validating: bytes.prefix(64), as: UTF8.self) { _ = FramebufferGeometry.parse(text) }
    }
}

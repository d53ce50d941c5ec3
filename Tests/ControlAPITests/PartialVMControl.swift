import ControlAPI

/// Test doubles that answer only the routes a test is about. Production conformances get no
/// defaults (a VMControl that forgets a method does not compile); these doubles opt in here.
protocol PartialVMControl: VMControl {}

extension PartialVMControl {
    func memoryStatistics() -> MemoryStatistics { MemoryStatistics() }

    func snapshot(_ request: SnapshotRequest) throws(VMControlError) -> SnapshotReport {
        throw .failed(operation: "snapshot", reason: "this VM cannot write snapshots")
    }

    func update(_ request: UpdateRequest) throws(VMControlError) -> UpdateStart {
        throw .conflict(reason: "this VM cannot be updated in place")
    }

    func updateStatus() -> UpdateStatus {
        UpdateStatus(status: "idle", pid: 0, version: "", binary: "", updatesCompleted: 0, last: nil)
    }

    func processorRegisters() throws(VMControlError) -> [ProcessorRegisters] {
        throw .conflict(reason: "this VM cannot report its vCPU registers")
    }

    func migrate(_ request: MigrationRequestBody) throws(VMControlError) -> MigrationStatus {
        throw .conflict(reason: "this VM cannot be migrated")
    }

    func migrationStatus() -> MigrationStatus { MigrationStatus(status: "idle") }

    func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int {
        throw .conflict(reason: "this VM has no keyboard")
    }

    func devices() -> [DeviceInfo] { [] }

    func updateDisk(_ request: DiskUpdate) throws(VMControlError) -> DeviceInfo {
        throw .invalidRequest(reason: "no disk named \(request.name)")
    }

    func fork(_ request: ForkRequest) throws(VMControlError) -> ForkReport { throw .conflict(reason: "this VM cannot fork") }
    func reserveFork(_ request: ForkReserveRequest) throws(VMControlError) -> ForkReserveReport { throw .conflict(reason: "this VM cannot fork") }

    func balloon() throws(VMControlError) -> BalloonInfo { throw .invalidRequest(reason: "this VM has no balloon") }

    func setBalloon(_ update: BalloonUpdate) throws(VMControlError) -> BalloonInfo { throw .invalidRequest(reason: "this VM has no balloon") }

    func balloonStatistics() throws(VMControlError) -> BalloonStatisticsInfo { throw .invalidRequest(reason: "this VM has no balloon") }

    func setBalloonStatistics(_ update: BalloonStatisticsUpdate) throws(VMControlError) -> BalloonInfo {
        throw .invalidRequest(reason: "this VM has no balloon")
    }
}

/// What the control API can ask of a running machine.
///
/// The machine side implements this; the API server only translates HTTP to these calls,
/// so ControlAPI does not link the VMM and its routing is tested without KVM. The server
/// makes these calls one at a time, on a thread of its own (never an event loop), so an
/// implementation may block: `pause()` waits for the vCPUs to stop. There are no default
/// answers: a conformance that forgets a route does not compile.
package protocol VMControl: Sendable {
    /// The machine's state, vCPUs and uptime (GET /vm).
    func vmInfo() -> VMInfo
    /// The guest memory regions (GET /vm/memory).
    func memoryRegions() -> [MemoryRegionInfo]
    /// Stops every vCPU; returns once none is running guest code (PUT /vm/pause).
    func pause() throws(VMControlError)
    /// Lets the vCPUs run again (PUT /vm/resume).
    func resume() throws(VMControlError)
    /// Asks the VM to end and returns at once (PUT /vm/shutdown).
    ///
    /// The VMM then leaves its wait for the machine and calls `ControlServer.stop()`, which
    /// finishes writing this request's reply before it closes the socket, so the client
    /// always gets its answer. Do not call `stop()` from inside this method.
    func shutdown() throws(VMControlError)
    /// How memory was restored and how a lazy fill is going (GET /vm/memory/stats).
    func memoryStatistics() -> MemoryStatistics
    /// Writes a snapshot as `request` asks (PUT /vm/snapshot).
    func snapshot(_ request: SnapshotRequest) throws(VMControlError) -> SnapshotReport
    /// Checks a live update can go ahead (PUT /vm/update) and returns its 202 answer and the
    /// update itself, which the server runs once the client has the answer. A refusal leaves
    /// the guest untouched.
    func update(_ request: UpdateRequest) throws(VMControlError) -> UpdateStart
    /// The running VMM and the last update's outcome (GET /vm/update).
    func updateStatus() -> UpdateStatus
    /// Each vCPU's control registers; the VM must be paused (GET /vm/vcpus).
    func processorRegisters() throws(VMControlError) -> [ProcessorRegisters]
    /// Starts a live migration and returns at once (PUT /vm/migrate, 202).
    func migrate(_ request: MigrationRequestBody) throws(VMControlError) -> MigrationStatus
    /// The current or last migration (GET /vm/migrate).
    func migrationStatus() -> MigrationStatus
    /// Presses and releases keys on the guest's keyboard; returns how many events, from the
    /// first, it took (PUT /vm/keyboard).
    func keyboard(_ events: [KeyboardEvent]) throws(VMControlError) -> Int
    /// The virtio devices (GET /vm/devices).
    func devices() -> [DeviceInfo]
    /// Serves a disk from another file; the VM must be paused (PATCH /vm/disk).
    func updateDisk(_ request: DiskUpdate) throws(VMControlError) -> DeviceInfo
    /// Forks the VM into `count` children sharing its memory copy-on-write (PUT /vm/fork);
    /// returns once every child runs or failed. The parent runs on either way.
    func fork(_ request: ForkRequest) throws(VMControlError) -> ForkReport
    /// Starts children ahead of a fork (PUT /vm/fork/reserve): each maps the memory and makes its
    /// VM, then waits; the next fork hands them the machine first.
    func reserveFork(_ request: ForkReserveRequest) throws(VMControlError) -> ForkReserveReport
    /// The balloon's target, size and counters (GET /vm/balloon); 400 without a balloon.
    func balloon() throws(VMControlError) -> BalloonInfo
    /// Sets the balloon's target (PUT /vm/balloon).
    func setBalloon(_ update: BalloonUpdate) throws(VMControlError) -> BalloonInfo
    /// The guest's last memory statistics (GET /vm/balloon/statistics); 400 when they are off.
    func balloonStatistics() throws(VMControlError) -> BalloonStatisticsInfo
    /// Changes the statistics polling interval (PATCH /vm/balloon/statistics).
    func setBalloonStatistics(_ update: BalloonStatisticsUpdate) throws(VMControlError) -> BalloonInfo
}

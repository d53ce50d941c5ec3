/// PUT /vm/restore body, to a standby VMM (`engram standby`): the snapshot to become, how its
/// memory comes in, and host resources replacing the saved VM's (as `engram restore` takes them).
package struct StandbyRestoreRequest: Codable, Sendable, Equatable {
    /// A snapshot file, tcp://HOST:PORT of a page server, or s3://BUCKET/NAME.
    package var snapshot: String
    /// "map" (the default), "lazy" or "copy".
    package var memory: String?
    /// Check every stored page's CRC before the guest runs (local files).
    package var verify: Bool?
    /// Disks replacing the saved ones, in order: PATH[,readonly][,id=NAME] (default: the standby's `--disk`s).
    package var disks: [String]?
    /// Taps replacing the saved interfaces', in order: tap=NAME or fd=N (default: the standby's `--net`s).
    package var nets: [String]?
    /// CID,PATH for the vsock device (default: the standby's `--vsock`).
    package var vsock: String?

    package init(snapshot: String, memory: String? = nil, verify: Bool? = nil, disks: [String]? = nil, nets: [String]? = nil, vsock: String? = nil) {
        self.snapshot = snapshot
        self.memory = memory
        self.verify = verify
        self.disks = disks
        self.nets = nets
        self.vsock = vsock
    }
}

/// PUT /vm/restore answer: the VM runs, and how long the standby VMM took, by its own clock.
package struct StandbyRestoreReport: Codable, Sendable, Equatable {
    /// "running".
    package var state: String
    package var snapshot: String
    package var memory: String
    /// From the request's arrival to every vCPU running.
    package var millisecondsToRunning: Double

    package init(state: String, snapshot: String, memory: String, millisecondsToRunning: Double) {
        self.state = state
        self.snapshot = snapshot
        self.memory = memory
        self.millisecondsToRunning = millisecondsToRunning
    }
}

/// What the control API asks of a standby VMM: a VMM made ready for a snapshot it does not know
/// yet (KVM VM, memory slots over placeholder memory), which becomes that VM on PUT /vm/restore.
package protocol StandbyControl: Sendable {
    /// The standby VMM: state "standby", its vCPUs and memory size (GET /vm).
    func standbyInfo() -> VMInfo
    /// Restores `request` into this VMM and returns once its vCPUs run; a refusal leaves the
    /// standby VMM as it was, ready for the next request.
    func restore(_ request: StandbyRestoreRequest) throws(VMControlError) -> StandbyRestoreReport
    /// Ends the standby VMM (PUT /vm/shutdown).
    func shutdown() throws(VMControlError)
}

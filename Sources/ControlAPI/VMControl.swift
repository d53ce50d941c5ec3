/// What the control API can ask of a running machine.
///
/// The machine side implements this; the API server only translates HTTP to these
/// calls, so ControlAPI does not link the VMM and its routing is tested without KVM.
package protocol VMControl: Sendable {
    /// The machine's state, vCPUs and uptime (GET /vm).
    func vmInfo() -> VMInfo
    /// The guest memory regions (GET /vm/memory).
    func memoryRegions() -> [MemoryRegionInfo]
    /// Stops every vCPU; returns once none is running guest code (PUT /vm/pause).
    func pause() throws(VMControlError)
    /// Lets the vCPUs run again (PUT /vm/resume).
    func resume() throws(VMControlError)
    /// Ends the VM: the VMM exits 0 once the reply has been sent (PUT /vm/shutdown).
    func shutdown() throws(VMControlError)
}

/// A request the machine cannot carry out in its present state.
package enum VMControlError: Error, Equatable, CustomStringConvertible {
    /// The request does not fit the state, e.g. resume while running. HTTP 409.
    case invalidState(operation: String, state: String)
    /// The machine failed while carrying it out. HTTP 500.
    case failed(operation: String, reason: String)

    package var description: String {
        switch self {
        case .invalidState(let operation, let state): "cannot \(operation): the VM is \(state)"
        case .failed(let operation, let reason): "\(operation) failed: \(reason)"
        }
    }
}

/// GET /vm body.
package struct VMInfo: Codable, Sendable, Equatable {
    /// "running", "paused" or "shutting-down".
    package var state: String
    package var vcpus: Int
    package var uptimeSeconds: Double
    package var memorySizeInBytes: UInt64

    package init(state: String, vcpus: Int, uptimeSeconds: Double, memorySizeInBytes: UInt64) {
        self.state = state
        self.vcpus = vcpus
        self.uptimeSeconds = uptimeSeconds
        self.memorySizeInBytes = memorySizeInBytes
    }
}

/// One guest-physical range a region is mapped at.
package struct GuestRangeInfo: Codable, Sendable, Equatable {
    package var guestAddress: UInt64
    package var sizeInBytes: UInt64
    /// Offset of this range inside the region's backing.
    package var regionOffset: UInt64

    package init(guestAddress: UInt64, sizeInBytes: UInt64, regionOffset: UInt64) {
        self.guestAddress = guestAddress
        self.sizeInBytes = sizeInBytes
        self.regionOffset = regionOffset
    }
}

/// One element of the GET /vm/memory body.
package struct MemoryRegionInfo: Codable, Sendable, Equatable {
    package var name: String
    package var sizeInBytes: UInt64
    /// "memfd", "file", "shared-file", "hugetlbfs" or "anonymous".
    package var backing: String
    /// The file behind the region, when it has a name in the file system.
    package var path: String?
    package var ranges: [GuestRangeInfo]

    package init(name: String, sizeInBytes: UInt64, backing: String, path: String?, ranges: [GuestRangeInfo]) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.backing = backing
        self.path = path
        self.ranges = ranges
    }
}

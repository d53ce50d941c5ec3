/// PUT /vm/fork: how many children, where their control sockets go, and each child's own devices.
package struct ForkRequest: Codable, Sendable, Equatable {
    package var count: Int
    /// Child i serves its API at `PREFIX-i.sock` and writes its console to `PREFIX-i.console`;
    /// default: this VM's socket path without `.sock`, then `-child`.
    package var apiSocketPrefix: String?
    /// Per child, in order (fewer entries leave the rest to the defaults): its own disks, taps and vsock.
    package var children: [ForkChildDevices]?
    /// "keep" (default): children that started keep running when others failed; "end": they are ended.
    package var onFailure: String?
    /// Also write the frozen base as a full snapshot here (a new file), which this VM and every
    /// child take as the parent of their next diff: a child's diff then holds only its own pages.
    package var baseSnapshot: String?

    package init(
        count: Int, apiSocketPrefix: String? = nil, children: [ForkChildDevices]? = nil, onFailure: String? = nil, baseSnapshot: String? = nil
    ) {
        self.count = count
        self.apiSocketPrefix = apiSocketPrefix
        self.children = children
        self.onFailure = onFailure
        self.baseSnapshot = baseSnapshot
    }
}

/// One child's devices, as `engram restore` takes overrides: disks PATH[,readonly][,id=NAME], taps
/// tap=NAME or fd=N, vsock CID,PATH.
package struct ForkChildDevices: Codable, Sendable, Equatable {
    package var disks: [String]?
    package var nets: [String]?
    package var vsock: String?

    package init(disks: [String]? = nil, nets: [String]? = nil, vsock: String? = nil) {
        self.disks = disks
        self.nets = nets
        self.vsock = vsock
    }
}

/// The answer to PUT /vm/fork.
package struct ForkReport: Codable, Sendable, Equatable {
    package var children: [ForkChildInfo]
    /// How many started and run.
    package var started: Int
    /// What holds the frozen memory now shared copy-on-write by the parent and its children.
    package var base: String
    /// How long the parent was paused, and the whole request.
    package var pausedMilliseconds: Double
    package var totalMilliseconds: Double
    /// The base written as a snapshot (`base_snapshot`), once the file is complete, and how long
    /// writing it took (while every VM ran); or why it could not be written.
    package var baseSnapshot: String?
    package var baseSnapshotMilliseconds: Double?
    package var baseSnapshotError: String?

    package init(
        children: [ForkChildInfo], base: String, pausedMilliseconds: Double, totalMilliseconds: Double, baseSnapshot: String? = nil,
        baseSnapshotMilliseconds: Double? = nil, baseSnapshotError: String? = nil
    ) {
        self.children = children
        started = children.filter { $0.status == "running" }.count
        self.base = base
        self.pausedMilliseconds = pausedMilliseconds
        self.totalMilliseconds = totalMilliseconds
        self.baseSnapshot = baseSnapshot
        self.baseSnapshotMilliseconds = baseSnapshotMilliseconds
        self.baseSnapshotError = baseSnapshotError
    }
}

package struct ForkChildInfo: Codable, Sendable, Equatable {
    package var index: Int
    package var pid: Int32?
    package var apiSocket: String
    package var consoleLog: String
    /// "running", "failed", or "ended" (started, then ended because another failed).
    package var status: String
    package var error: String?

    package init(index: Int, pid: Int32?, apiSocket: String, consoleLog: String, status: String, error: String? = nil) {
        self.index = index
        self.pid = pid
        self.apiSocket = apiSocket
        self.consoleLog = consoleLog
        self.status = status
        self.error = error
    }
}

/// PUT /vm/fork/reserve: children to start now, for the next fork.
package struct ForkReserveRequest: Codable, Sendable, Equatable {
    package var count: Int

    package init(count: Int) { self.count = count }
}

/// How many children wait for the next fork, how many this request started, in how long, and
/// why any could not start.
package struct ForkReserveReport: Codable, Sendable, Equatable {
    package var reserved: Int
    package var started: Int
    /// The processes this request started, in the order forks will take them.
    package var pids: [Int32]
    package var milliseconds: Double
    package var errors: [String]?

    package init(reserved: Int, started: Int, pids: [Int32], milliseconds: Double, errors: [String]? = nil) {
        self.reserved = reserved
        self.started = started
        self.pids = pids
        self.milliseconds = milliseconds
        self.errors = errors
    }
}

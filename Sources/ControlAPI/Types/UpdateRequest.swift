/// How a live update hands the guest over: `exec` replaces this process's image (same pid);
/// `transfer` starts the new binary beside this one, lets it make its VM while the guest runs,
/// and only then pauses the guest and hands it over (a new pid; QEMU's cpr-transfer).
package enum UpdateMode: String, Codable, Sendable, Equatable, CaseIterable {
    case exec, transfer

    package init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let mode = UpdateMode(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "mode is \"\(text)\"; expected \"exec\" or \"transfer\"")
        }
        self = mode
    }
}

/// PUT /vm/update body: which binary to exec and where the handed-over state goes.
package struct UpdateRequest: Codable, Sendable, Equatable {
    /// The new Engram executable; absent: the path the running VMM was started from (so a
    /// package upgrade that replaced the file is picked up).
    package var binary: String?
    /// Where the machine state is written for the new process (mode 0600). It is removed once
    /// the new process runs the guest; if that process cannot, it leaves a full snapshot here
    /// for `engram restore`. Absent: the control socket's path plus ".update".
    package var statePath: String?
    /// "exec" (the default) or "transfer".
    package var mode: UpdateMode?

    package init(binary: String? = nil, statePath: String? = nil, mode: UpdateMode? = nil) {
        self.binary = binary
        self.statePath = statePath
        self.mode = mode
    }
}

/// PUT /vm/update answer (202): the update is under way; GET /vm/update tells how it ended.
package struct UpdateAccepted: Codable, Sendable, Equatable {
    /// This update's number: GET /vm/update's `last.update` equals it once it has ended.
    package var update: Int
    package var status: String
    package var binary: String
    package var statePath: String
    /// The VMM's process id, which the new binary keeps (exec mode; in transfer mode the new
    /// VMM is another process, whose pid GET /vm/update reports).
    package var pid: Int32

    package init(update: Int, binary: String, statePath: String, pid: Int32) {
        self.update = update
        self.status = "updating"
        self.binary = binary
        self.statePath = statePath
        self.pid = pid
    }
}

/// GET /vm/update answer: the running VMM and how its last update went.
package struct UpdateStatus: Codable, Sendable, Equatable {
    /// "idle" (no update yet), "updating", "completed" or "failed" (the last update's end).
    package var status: String
    package var pid: Int32
    /// The running VMM's version.
    package var version: String
    /// The running VMM's executable, the default binary of the next update.
    package var binary: String
    /// Updates this VM has been through since it was started or restored.
    package var updatesCompleted: Int
    package var last: UpdateResult?

    package init(status: String, pid: Int32, version: String, binary: String, updatesCompleted: Int, last: UpdateResult?) {
        self.status = status
        self.pid = pid
        self.version = version
        self.binary = binary
        self.updatesCompleted = updatesCompleted
        self.last = last
    }
}

/// How one update ended.
package struct UpdateResult: Codable, Sendable, Equatable {
    package var update: Int
    /// "completed" or "failed".
    package var status: String
    package var binary: String
    package var statePath: String
    /// Why it failed (the guest then runs on in the previous VMM, untouched).
    package var error: String?
    /// The version that ran before the update.
    package var fromVersion: String?
    /// From the vCPUs stopping in the old process to their starting in the new one (CLOCK_MONOTONIC).
    package var downtimeMilliseconds: Double?
    /// Saving the machine state and writing the handover file, in the old process.
    package var saveMilliseconds: Double?
    /// From the old process calling exec to the new process's start (the kernel tearing down
    /// the old address space and VM, loading the binary, the runtime starting).
    package var execMilliseconds: Double?
    /// From the new process's start to its vCPUs starting (mapping memory, rebuilding the VM);
    /// in transfer mode, from the handed-over state's arrival.
    package var restoreMilliseconds: Double?
    /// "exec" or "transfer" (absent from VMMs before transfer mode: exec).
    package var mode: UpdateMode?

    package init(
        update: Int, status: String, binary: String, statePath: String, error: String? = nil, fromVersion: String? = nil,
        downtimeMilliseconds: Double? = nil, saveMilliseconds: Double? = nil, execMilliseconds: Double? = nil,
        restoreMilliseconds: Double? = nil, mode: UpdateMode? = nil
    ) {
        self.mode = mode
        self.update = update
        self.status = status
        self.binary = binary
        self.statePath = statePath
        self.error = error
        self.fromVersion = fromVersion
        self.downtimeMilliseconds = downtimeMilliseconds
        self.saveMilliseconds = saveMilliseconds
        self.execMilliseconds = execMilliseconds
        self.restoreMilliseconds = restoreMilliseconds
    }
}

/// What `VMControl.update` returns: the 202 answer, and the update itself, which the server
/// runs once the client has that answer (the exec ends this process's part).
package struct UpdateStart: Sendable {
    package var accepted: UpdateAccepted
    package var proceed: @Sendable () -> Void

    package init(accepted: UpdateAccepted, proceed: @escaping @Sendable () -> Void) {
        self.accepted = accepted
        self.proceed = proceed
    }
}

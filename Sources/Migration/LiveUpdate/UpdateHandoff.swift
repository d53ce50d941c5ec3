import GuestMemory
import Machine

/// What one VMM hands the binary it execs in a live update: the machine state, and which
/// inherited descriptors hold guest memory and the control socket.
///
/// Written as JSON (mode 0600) at the update's state path just before exec; the new process
/// reads it, maps the descriptors it names and deletes it once the guest runs. Versioned on its
/// own, apart from the machine state inside, so each side can tell which one it does not speak.
package struct UpdateHandoff: Codable, Sendable, Equatable {
    /// 1: the first handoff layout.
    package static let currentVersion = 1

    package var version = UpdateHandoff.currentVersion
    /// This update's number for the VM (1 for its first attempt).
    package var update: Int
    /// Updates this VM completed before this one.
    package var updatesCompleted: Int
    /// The version of the VMM that wrote the handoff.
    package var fromVersion: String
    /// The binary exec'd, which becomes the default of the next update.
    package var binary: String
    /// Where this handoff lies; where the new process leaves a snapshot if it cannot continue.
    package var statePath: String
    /// CLOCK_MONOTONIC, in nanoseconds, when the old VMM had stopped every vCPU.
    package var pausedAtNanoseconds: UInt64
    /// How long saving the state and writing this file took in the old VMM.
    package var saveMilliseconds: Double
    /// False if the guest was paused before the update: it stays paused.
    package var resume: Bool
    package var regions: [InheritedRegion]
    /// The control API's listening socket, kept open across exec.
    package var controlSocket: InheritedSocket?
    /// The console log, continued (appended to) by the new VMM.
    package var consoleLogPath: String?
    /// The terminal mode to put back when the VM ends (the old VMM had made it raw): termios bytes.
    package var terminalMode: [UInt8]?
    /// The machine, paused, as a snapshot's state section holds it.
    package var machine: MachineStateRecord

    package init(
        update: Int, updatesCompleted: Int, fromVersion: String, binary: String, statePath: String, pausedAtNanoseconds: UInt64,
        saveMilliseconds: Double, resume: Bool, regions: [InheritedRegion], controlSocket: InheritedSocket?,
        consoleLogPath: String?, terminalMode: [UInt8]?, machine: MachineStateRecord
    ) {
        self.update = update
        self.updatesCompleted = updatesCompleted
        self.fromVersion = fromVersion
        self.binary = binary
        self.statePath = statePath
        self.pausedAtNanoseconds = pausedAtNanoseconds
        self.saveMilliseconds = saveMilliseconds
        self.resume = resume
        self.regions = regions
        self.controlSocket = controlSocket
        self.consoleLogPath = consoleLogPath
        self.terminalMode = terminalMode
        self.machine = machine
    }

    /// Every descriptor the new process must find open.
    package var descriptors: [CInt] { regions.map(\.descriptor) + (controlSocket.map { [$0.descriptor] } ?? []) }
}

/// One guest memory region kept open across exec: its descriptor and how it was made.
package struct InheritedRegion: Codable, Sendable, Equatable {
    package var name: String
    package var sizeInBytes: UInt64
    /// RegionBacking.kindName: memfd, file, shared-file or hugetlbfs.
    package var backing: String
    /// The file's path (file, shared-file) or the hugetlbfs mount (hugetlbfs).
    package var path: String?
    package var descriptor: CInt

    package init(name: String, sizeInBytes: UInt64, backing: String, path: String?, descriptor: CInt) {
        self.name = name
        self.sizeInBytes = sizeInBytes
        self.backing = backing
        self.path = path
        self.descriptor = descriptor
    }
}

/// The control API's listening socket kept open across exec.
package struct InheritedSocket: Codable, Sendable, Equatable {
    package var path: String
    package var descriptor: CInt

    package init(path: String, descriptor: CInt) {
        self.path = path
        self.descriptor = descriptor
    }
}

import FoundationEssentials
import Glibc
import LinuxSystem
import Machine
import SystemPackage

/// What `engram version --json` reports: the version and the formats that binary reads.
package struct EngramBinaryInfo: Codable, Sendable, Equatable {
    package var version: String
    package var machineStateVersion: Int
    package var updateHandoffVersion: Int
    /// Optional parts of the handoff this binary reads (nil from binaries before any):
    /// `devices`, every device's host side (vsock's listener and connections kept across exec).
    package var updateHandoffFeatures: [String]?

    package init(version: String, machineStateVersion: Int = MachineStateRecord.currentVersion,
                 updateHandoffVersion: Int = UpdateHandoff.currentVersion,
                 updateHandoffFeatures: [String]? = UpdateHandoff.features) {
        self.version = version
        self.machineStateVersion = machineStateVersion
        self.updateHandoffVersion = updateHandoffVersion
        self.updateHandoffFeatures = updateHandoffFeatures
    }

    /// Whether the binary continues devices' host sides (else only disks, through `disks`).
    package var readsDevices: Bool { updateHandoffFeatures?.contains(UpdateHandoff.devicesFeature) == true }
    /// The binary can take a transfer-mode update.
    package var takesTransfer: Bool { updateHandoffFeatures?.contains(UpdateHandoff.transferFeature) == true }
    /// The binary reads the handoff's machine as sections.
    package var readsMachineSections: Bool { updateHandoffFeatures?.contains(UpdateHandoff.machineSectionsFeature) == true }

    /// Snake-case JSON, as the control API writes.
    package func json() -> String {
        let features = (updateHandoffFeatures ?? []).map { "\"\($0)\"" }.joined(separator: ",")
        return #"{"version":"\#(version)","machine_state_version":\#(machineStateVersion),"update_handoff_version":\#(updateHandoffVersion),"update_handoff_features":[\#(features)]}"#
    }
}

/// Checks, before anything is paused, that a binary can take over this VM: it exists, is an
/// executable file, and says (`BINARY version --json`) that it reads this machine state and
/// handoff version. Like QEMU's cpr, the old VMM asks the new one; a binary that cannot answer
/// in time is refused.
package enum BinaryCheck {
    /// How long the version query may take by default.
    package static let defaultTimeoutMilliseconds: Int32 = 5000
    /// The most output read from it.
    static let maximumOutputBytes = 64 * 1024

    package static func check(
        _ path: String, timeoutMilliseconds: Int32 = defaultTimeoutMilliseconds
    ) throws(LiveUpdateError) -> EngramBinaryInfo {
        func refuse(_ reason: String) -> LiveUpdateError { .binaryUnusable(path: path, reason: reason) }
        guard path.hasPrefix("/") else { throw refuse("the binary must be an absolute path") }
        guard let status = FileStatus(path: path) else {
            throw refuse(errno == ENOENT ? "it does not exist" : "\(Errno(rawValue: errno))")
        }
        guard status.kind == .regular else { throw refuse("it is not a regular file") }
        guard FileSystem.isExecutable(path) else {
            throw refuse("it is not executable (mode \(String(status.permissions, radix: 8)))")
        }
        let termination: Subprocess.Termination
        let output: [UInt8]
        do {
            (termination, output) = try Subprocess.run(
                path, arguments: ["version", "--json"], timeoutMilliseconds: timeoutMilliseconds, maximumOutputBytes: maximumOutputBytes)
        } catch { throw refuse("it cannot be started: \(error.errno)") }
        let query = "`\(path) version --json`"
        guard termination == .exited(0) else {
            let detail = String(decoding: output.prefix(200), as: UTF8.self).split(whereSeparator: \.isNewline).first.map { ": \($0)" } ?? ""
            switch termination {
            case .timedOut: throw refuse("\(query) did not answer within \(timeoutMilliseconds) ms")
            case .signaled(let signal): throw refuse("\(query) exited with status \(128 + signal)\(detail)")
            case .exited(let status): throw refuse("\(query) exited with status \(status)\(detail)")
            }
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        guard let answer = try? decoder.decode(EngramBinaryInfo.self, from: Data(output)) else {
            throw refuse("\(query) did not answer with an Engram version (is it Engram 0.1 or later?)")
        }
        guard answer.machineStateVersion == MachineStateRecord.currentVersion else {
            throw refuse(
                "it reads machine state version \(answer.machineStateVersion); this VM's state is version \(MachineStateRecord.currentVersion)")
        }
        guard answer.updateHandoffVersion == UpdateHandoff.currentVersion else {
            throw refuse(
                "it reads update handoff version \(answer.updateHandoffVersion); this VMM writes version \(UpdateHandoff.currentVersion)")
        }
        return answer
    }
}

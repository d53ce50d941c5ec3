import ArgumentParser
import Machine
import Migration
import VMM

/// `engram version [--json]`: the version, and the state formats this binary reads. A VMM asks
/// a binary this before a live update hands the guest to it.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print Engram's version and the machine-state and update-handoff versions it reads.")

    @Flag(help: "Answer in JSON: version, machine_state_version, update_handoff_version.") var json = false

    func run() {
        let info = EngramBinaryInfo(version: EngramVersion.current)
        if json {
            print(info.json())
        } else {
            print("engram \(info.version) (machine state version \(info.machineStateVersion), update handoff version \(info.updateHandoffVersion))")
        }
    }
}

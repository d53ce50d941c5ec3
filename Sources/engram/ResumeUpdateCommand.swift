import ArgumentParser
import ControlAPI
import GuestMemory
import LinuxSystem
import Machine
import Migration

/// `engram resume-update STATE_PATH` (internal): the new process of a live update. Maps the
/// inherited guest memory, rebuilds the machine from the handed-over state, takes over the
/// control socket and console, and resumes the guest. If it cannot, it leaves a full snapshot
/// at STATE_PATH for `engram restore` and exits 1.
struct ResumeUpdateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume-update", abstract: "Continue a VM handed over by a live update (run by `engram update`, not by people).",
        shouldDisplay: false)

    @Argument(help: "The handoff file the previous VMM wrote.") var statePath: String
    @Option(help: "CLOCK_MONOTONIC nanoseconds when the previous VMM called exec.") var execStarted: UInt64?
    @Option(help: "The child holding the previous image's address space, ended once the guest runs.") var teardownHolder: Int32?

    func run() throws {
        let started = LiveUpdateSource.monotonicNanoseconds()
        TerminationSignals.block()
        let handoff: UpdateHandoff
        do { handoff = try UpdateHandoff.read(from: statePath) } catch {
            throw CommandFailure("update failed: \(error); the guest's memory was only in the previous process and is lost")
        }
        let memory: GuestMemoryMap
        do { memory = try LiveUpdateTarget.memory(of: handoff) } catch {
            throw CommandFailure("update failed: \(error); the guest cannot be saved without its memory")
        }
        let machine: Machine
        do { machine = try LiveUpdateTarget.machine(of: handoff, memory: memory) } catch {
            throw Self.saved(handoff, memory: memory, after: error.description)
        }
        let session = LiveUpdateSession(
            apiSocket: handoff.controlSocket?.path, consoleLogPath: handoff.consoleLogPath, binary: handoff.binary,
            attempts: handoff.update, completed: handoff.updatesCompleted + 1)
        let controller = MachineController(machine: machine, liveUpdate: session)
        let setup = MachineSession.Setup(
            apiSocket: handoff.controlSocket?.path, inheritedListener: handoff.controlSocket?.descriptor,
            terminalMode: handoff.terminalMode, startPaused: !handoff.resume, announce: false)
        var running = false
        do {
            try MachineSession.run(
                machine, controller: controller, setup: setup,
                beforeStart: {
                    // Recorded before the vCPUs start, so GET /vm/update never shows this update under way.
                    let now = LiveUpdateSource.monotonicNanoseconds()
                    session.ended(UpdateResult(
                        update: handoff.update, status: "completed", binary: handoff.binary, statePath: handoff.statePath,
                        fromVersion: handoff.fromVersion, downtimeMilliseconds: Double(now - handoff.pausedAtNanoseconds) / 1e6,
                        saveMilliseconds: handoff.saveMilliseconds,
                        execMilliseconds: execStarted.map { started > $0 ? Double(started - $0) / 1e6 : 0 },
                        restoreMilliseconds: Double(now - started) / 1e6))
                },
                afterStart: {
                    running = true
                    if let teardownHolder { ProcessImage.endTeardownHolder(teardownHolder) }
                    LiveUpdateSource.removeHandoff(at: handoff.statePath)
                    Diagnostics.note("updated to \(handoff.binary) (update \(handoff.update), from version \(handoff.fromVersion))")
                })
        } catch let failure as CommandFailure where !running {
            throw Self.saved(handoff, memory: memory, after: failure.description)
        }
    }

    /// Saves the guest for `engram restore` after the new process failed, and says so.
    private static func saved(_ handoff: UpdateHandoff, memory: GuestMemoryMap, after reason: String) -> CommandFailure {
        if let problem = LiveUpdateTarget.saveForRestore(handoff, memory: memory) {
            return CommandFailure("update failed: \(reason); saving the guest to \(handoff.statePath) failed too: \(problem)")
        }
        return CommandFailure(
            "update failed: \(reason); the guest is saved in \(handoff.statePath): `engram restore \(handoff.statePath)` brings it back")
    }
}

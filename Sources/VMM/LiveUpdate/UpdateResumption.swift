import ControlAPI
import GuestMemory
import LinuxSystem
import Machine
import Migration

/// The new process of a live update: maps the inherited guest memory, rebuilds the machine from
/// the handed-over state, takes over the control socket and console, and resumes the guest. If
/// it cannot, it leaves a full snapshot at the state path for `engram restore`.
package enum UpdateResumption {
    /// Continues the VM handed over in `statePath` and runs it to its end; returns the exit status.
    /// `execStarted` is the previous process's CLOCK_MONOTONIC at exec; `teardownHolder` the child
    /// that holds the previous image's address space, ended once the guest runs.
    package static func run(statePath: String, execStarted: UInt64?, teardownHolder: Int32?) throws(VMMError) -> Int32 {
        let started = MonotonicClock.nanoseconds()
        TerminationSignals.block()
        let handoff: UpdateHandoff
        do { handoff = try UpdateHandoff.read(from: statePath) } catch {
            throw .failed("update failed: \(error); the guest's memory was only in the previous process and is lost")
        }
        let memory: GuestMemoryMap
        do { memory = try LiveUpdateTarget.memory(of: handoff) } catch {
            throw .failed("update failed: \(error); the guest cannot be saved without its memory")
        }
        let machine: Machine
        do { machine = try LiveUpdateTarget.machine(of: handoff, memory: memory) } catch {
            throw saved(handoff, memory: memory, after: error.description)
        }
        let (session, controller, setup) = UpdateResumption.continuation(of: handoff, machine: machine)
        var running = false
        do throws(VMMError) {
            return try MachineSession.run(
                machine, controller: controller, setup: setup,
                beforeStart: {
                    // Recorded before the vCPUs start, so GET /vm/update never shows this update under way.
                    let now = MonotonicClock.nanoseconds()
                    session.ended(UpdateResult(
                        update: handoff.update, status: "completed", binary: handoff.binary, statePath: handoff.statePath,
                        fromVersion: handoff.fromVersion, downtimeMilliseconds: handoff.pausedMilliseconds(at: now),
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
        } catch where !running {
            throw saved(handoff, memory: memory, after: error.description)
        }
    }

    /// What the new VMM of either mode runs the handed-over machine with: the update history, the
    /// controller, and the session settings the old VMM had (control socket, terminal, paused or not).
    static func continuation(of handoff: UpdateHandoff, machine: Machine) -> (LiveUpdateSession, MachineController, MachineSession.Setup) {
        let session = LiveUpdateSession(
            apiSocket: handoff.controlSocket?.path, consoleLogPath: handoff.consoleLogPath, binary: handoff.binary,
            attempts: handoff.update, completed: handoff.updatesCompleted + 1)
        var setup = MachineSession.Setup(apiSocket: handoff.controlSocket?.path)
        setup.inheritedListener = handoff.controlSocket?.descriptor
        setup.terminalMode = handoff.terminalMode
        setup.startPaused = !handoff.resume
        setup.announce = false
        return (session, MachineController(machine: machine, liveUpdate: session), setup)
    }

    /// Saves the guest for `engram restore` after the new process failed, and says so.
    static func saved(_ handoff: UpdateHandoff, memory: GuestMemoryMap, after reason: String) -> VMMError {
        if let problem = LiveUpdateTarget.saveForRestore(handoff, memory: memory) {
            return .failed("update failed: \(reason); saving the guest to \(handoff.statePath) failed too: \(problem)")
        }
        return .failed("update failed: \(reason); the guest is saved in \(handoff.statePath): `engram restore \(handoff.statePath)` brings it back")
    }
}

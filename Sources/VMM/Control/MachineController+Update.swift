import ControlAPI
import Devices
import Glibc
import LinuxSystem
import Machine
import Migration

extension MachineController {
    /// PUT /vm/update: checks the memory can be kept and the binary can take over, then
    /// returns the 202 and the update, which runs once the client has the answer. Nothing is
    /// paused until every check has passed.
    package func update(_ request: UpdateRequest) throws(VMControlError) -> UpdateStart {
        guard let socket = liveUpdate.apiSocket else { throw .conflict(reason: "live update needs the control socket") }
        let binary = request.binary ?? liveUpdate.binary
        let statePath = request.statePath ?? LiveUpdateSource.defaultStatePath(socketPath: socket)
        guard machine.runState != .stopping else { throw .invalidState(operation: "update", state: machine.runState.rawValue) }
        // The exec would end the migration's connections (a postcopy destination waiting on pages).
        try refuseDuringMigration("update")
        do { try LiveUpdateSource.checkStatePath(statePath) } catch { throw .invalidRequest(reason: error.description) }
        let regions: [InheritedRegion]
        do { regions = try LiveUpdateSource.inheritedRegions(of: machine.memory) } catch { throw .conflict(reason: error.description) }
        let target: EngramBinaryInfo
        do { target = try BinaryCheck.check(binary) } catch { throw .invalidRequest(reason: error.description) }
        let mode = request.mode ?? .exec
        if mode == .transfer, !target.takesTransfer {
            throw .invalidRequest(reason: "cannot update to \(binary) by transfer: it is Engram \(target.version), which cannot take one; use --mode exec")
        }
        guard let number = liveUpdate.begin() else { throw .conflict(reason: "an update of this VM is already under way") }
        let accepted = UpdateAccepted(update: number.update, binary: binary, statePath: statePath, pid: getpid())
        let plan = UpdatePlan(
            update: number.update, updatesCompleted: number.completed, binary: binary, statePath: statePath, socketPath: socket,
            regions: regions, keepsDevices: target.readsDevices || mode == .transfer, machineInSections: target.readsMachineSections)
        return UpdateStart(accepted: accepted) { [self] in
            switch mode {
            case .exec: perform(plan)
            case .transfer: transfer(plan)
            }
        }
    }

    package func updateStatus() -> UpdateStatus { liveUpdate.status(version: EngramVersion.current) }

    /// What an accepted update will do.
    struct UpdatePlan {
        let update: Int
        let updatesCompleted: Int
        let binary: String
        let statePath: String
        let socketPath: String
        let regions: [InheritedRegion]
        /// The new binary continues every device's host side (else disks only, as before it could).
        let keepsDevices: Bool
        /// The binary reads the machine as sections (faster than the record's JSON).
        let machineInSections: Bool
    }

    /// Pauses, saves the state for the new process and execs it. Returns only if the update
    /// failed before the new binary took over: the guest then runs on here as before.
    private func perform(_ plan: UpdatePlan) {
        func fail(_ reason: String) {
            Diagnostics.note("update to \(plan.binary) failed; the guest runs on: \(reason)")
            liveUpdate.ended(
                UpdateResult(update: plan.update, status: "failed", binary: plan.binary, statePath: plan.statePath, error: reason))
        }
        // A lazily restored VM's memory is complete only once the fill has ended.
        guard machine.waitForMemoryFill() else { return fail("the lazy restore's memory fill failed") }
        let wasRunning: Bool, pausedAt: UInt64
        switch pauseForUpdate() {
        case .success(let paused): (wasRunning, pausedAt) = paused
        case .failure(let reason): return fail(reason.text)
        }
        let resumeHere = { if wasRunning { _ = self.machine.resume() } }
        let server = liveUpdate.server
        let handoff: UpdateHandoff
        // Back-end state (vsock's connection table) travels in memfds held open until exec.
        let stateFiles: [OwnedFileDescriptor]
        do {
            (handoff, stateFiles) = try handOff(plan, pausedAt: pausedAt, resume: wasRunning)
            try handoff.write()
        } catch {
            resumeHere()
            return fail("\(error)")
        }
        // Connections arriving from here on wait in the backlog for the new process.
        server?.setAccepting(false)
        // The exec's own cost (tearing down this process's memory map and VM, loading the new
        // binary) is timed from here to the new process's start.
        let arguments = ["resume-update", plan.statePath, "--exec-started", String(LiveUpdateSource.monotonicNanoseconds())]
        let reason = withExtendedLifetime(stateFiles) {
            liveUpdate.mainThread.exec(plan.binary, arguments: arguments, keeping: handoff.descriptors)
        }
        LiveUpdateSource.removeHandoff(at: plan.statePath)
        server?.setAccepting(true)
        resumeHere()
        fail(LiveUpdateError.execFailed(path: plan.binary, reason: reason).description)
    }

    /// Stops the guest for the handover (a paused guest stays as it is): whether it was running,
    /// and when its vCPUs stopped; or why it cannot be.
    func pauseForUpdate() -> Result<(wasRunning: Bool, pausedAt: UInt64), UpdateRefusal> {
        let wasRunning = machine.runState == .running
        if wasRunning {
            guard machine.pause() else { return .failure(UpdateRefusal(text: "cannot pause the VM: it is \(machine.runState)")) }
        } else if machine.runState != .paused {
            return .failure(UpdateRefusal(text: "the VM is \(machine.runState)"))
        }
        return .success((wasRunning, LiveUpdateSource.monotonicNanoseconds()))
    }

    /// Why an update stopped before its handover, in words.
    struct UpdateRefusal: Error { let text: String }

    /// The paused machine as the next VMM takes it over, and the memfds holding back-end state,
    /// to be held open until it has them.
    func handOff(_ plan: UpdatePlan, pausedAt: UInt64, resume: Bool) throws -> (UpdateHandoff, [OwnedFileDescriptor]) {
        var written = UpdateHandoff(
            update: plan.update, updatesCompleted: plan.updatesCompleted, fromVersion: EngramVersion.current, binary: plan.binary,
            statePath: plan.statePath, pausedAtNanoseconds: pausedAt, saveMilliseconds: 0, resume: resume,
            regions: plan.regions,
            controlSocket: liveUpdate.server?.listenerDescriptor.map { InheritedSocket(path: plan.socketPath, descriptor: $0) },
            consoleLogPath: liveUpdate.consoleLogPath, terminalMode: liveUpdate.terminalMode, machine: try machine.saveState())
        let handovers = machine.handOverDevices().filter { plan.keepsDevices || $0.handover.descriptor(named: VirtioBlock.diskDescriptorName) != nil }
        let kept = try InheritedDevice.recording(handovers)
        written.machineInSections = plan.machineInSections
        written.keep(kept.devices)
        if !plan.keepsDevices { written.devices = nil }  // an older binary: the disks alone, in `disks`
        written.saveMilliseconds = Double(LiveUpdateSource.monotonicNanoseconds() - pausedAt) / 1e6
        return (written, kept.stateFiles)
    }
}

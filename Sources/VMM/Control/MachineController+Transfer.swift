import ControlAPI
import Glibc
import LinuxSystem
import Machine
import Migration

extension MachineController {
    /// How long the new VMM may take to make its VM ready, and then to take the guest over.
    static let transferTimeoutMilliseconds = 60_000
    /// The new VMM gives up rather than run a guest this close to the old one's timeout: the old
    /// one resumes it then, and it must not run in both.
    static let transferTakeoverMarginMilliseconds = 10_000

    /// A transfer-mode update (QEMU's cpr-transfer): the new binary starts beside this process,
    /// maps guest memory and makes its VM, vCPUs and memory slots while the guest runs here;
    /// only then is the guest paused and the machine, devices and control socket handed over
    /// on the socket pair. Once the new VMM says the guest is about to run there, this process
    /// ends at once, as an exec would end its image: nothing here touches a device or the
    /// socket file again. Any failure before that leaves the guest running here.
    func transfer(_ plan: UpdatePlan) {
        var child: pid_t = 0
        func endChild() {
            guard child > 0 else { return }
            kill(child, SIGKILL)
            Subprocess.waitForExit(child)
            child = 0
        }
        func fail(_ reason: String) {
            endChild()
            Diagnostics.note("update to \(plan.binary) failed; the guest runs on: \(reason)")
            liveUpdate.ended(UpdateResult(
                update: plan.update, status: "failed", binary: plan.binary, statePath: plan.statePath, error: reason, mode: .transfer))
        }
        guard machine.waitForMemoryFill() else { return fail("the lazy restore's memory fill failed") }
        // 1. The new VMM, and guest memory for it, while the guest runs.
        let link: TransferLink
        do {
            let (channel, theirs) = try DescriptorChannel.pair(peer: "the new VMM")
            link = TransferLink(channel)
            child = try ProcessImage.spawnBeside(
                plan.binary, arguments: ["resume-update", "--transfer-descriptor", "3"], handing: theirs.rawValue, as: 3)
            close(theirs.release())  // the child's copy only: its end of the pair reads as closed once it exits
            let regions = plan.regions.enumerated().map { index, region in
                InheritedRegion(name: region.name, sizeInBytes: region.sizeInBytes, backing: region.backing, descriptor: CInt(index))
            }
            // The control socket goes too, so the new VMM's server is ready before the guest pauses.
            let listener = liveUpdate.server?.listenerDescriptor
            let socket = listener.map { _ in InheritedSocket(path: plan.socketPath, descriptor: CInt(regions.count)) }
            // What this side encodes inside the pause, encoded once now while the guest runs.
            TransferMessage.warmUpCoding(machine: MachineStateRecord.warmUpCoding(cpuid: []))
            try link.send(.prepare(TransferPreparation(cpuCount: machine.configuration.cpuCount, regions: regions, controlSocket: socket)),
                          descriptors: plan.regions.map(\.descriptor) + (listener.map { [$0] } ?? []))
            let (answer, _) = try link.receive(timeoutMilliseconds: Self.transferTimeoutMilliseconds)
            switch answer {
            case .ready: break
            case .failed(let reason): return fail("the new VMM could not get ready: \(reason)")
            default: return fail("the new VMM answered \(answer) instead of ready")
            }
        } catch {
            return fail("\(error)")
        }
        // 2. The guest pauses only now; the state and every host resource go over.
        let wasRunning: Bool, pausedAt: UInt64
        switch pauseForUpdate() {
        case .success(let paused): (wasRunning, pausedAt) = paused
        case .failure(let reason): return fail(reason.text)
        }
        let server = liveUpdate.server
        // The new VMM, which had the state, is gone before the guest resumes here: it must not run
        // in both (the new VMM also gives up short of this side's timeout, so a slow one never runs it).
        func resumeHere() {
            endChild()
            server?.setAccepting(true)
            if wasRunning { _ = machine.resume() }
        }
        do {
            let (handoff, stateFiles) = try handOff(plan, pausedAt: pausedAt, resume: wasRunning)
            // Connections arriving from here on wait in the backlog for the new VMM.
            server?.setAccepting(false)
            try withExtendedLifetime(stateFiles) { () throws(LiveUpdateError) in
                try link.send(.handoff(handoff), descriptors: handoff.descriptors)
            }
            let (answer, _) = try link.receive(timeoutMilliseconds: Self.transferTimeoutMilliseconds)
            guard case .running(let downtime) = answer else {
                resumeHere()
                if case .failed(let reason) = answer { return fail("the new VMM could not take the guest over: \(reason)") }
                return fail("the new VMM answered \(answer) instead of running")
            }
            Diagnostics.note("updated to \(plan.binary) by transfer: the guest runs in pid \(child) (paused \(Double(Int(downtime * 100)) / 100) ms); this VMM ends")
        } catch {
            resumeHere()
            return fail("\(error)")
        }
        // The guest is the new VMM's: end here without tearing anything down (no socket file
        // removed, no terminal mode restored, no device shut), as exec would. Exiting still
        // unmaps guest memory (milliseconds for gigabytes, on a CPU the guest may want right
        // after its pause): at the lowest priority, it waits for the new VMM's threads.
        NamedThread.lowerWholeProcessPriority()
        _exit(0)
    }
}

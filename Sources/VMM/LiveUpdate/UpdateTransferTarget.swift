import ControlAPI
import Glibc
import GuestMemory
import LinuxSystem
import Machine
import Migration

/// The new process of a transfer-mode live update, started beside the running VMM with a socket
/// to it: maps the guest memory it is handed and makes its VM, vCPUs and memory slots while the
/// guest still runs there; then takes the paused machine, devices and control socket, says the
/// guest is about to run here, and runs it. Until it says so, any failure is reported back and
/// this process ends at once: the guest runs on in the old VMM, whose socket file stays put.
package enum UpdateTransferTarget {
    package static func run(descriptor: CInt) throws(VMMError) -> Int32 {
        TerminationSignals.block()
        _ = ProcessImage.setCloseOnExec(descriptor, true)
        let link = TransferLink(DescriptorChannel(taking: OwnedFileDescriptor(taking: descriptor), peer: "the running VMM"))
        let timeout = MachineController.transferTimeoutMilliseconds
        /// Tells the old VMM and ends here without tearing anything down.
        func giveUp(_ reason: String) -> Never {
            try? link.send(.failed(reason))
            Diagnostics.note("transfer-mode update failed; the guest runs on in the previous VMM: \(reason)")
            _exit(1)
        }

        // 1. Ready while the guest runs: memory mapped, VM, slots and vCPUs made, the control
        // server started on the same socket as the old VMM's but not accepting (its clients wait
        // in the backlog until the guest runs here). Never stopped before the takeover: stopping
        // removes the socket file, which is still the old VMM's.
        let memory: GuestMemoryMap
        let shell: MachineShell
        var server: ControlServer? = nil
        do {
            (memory, shell) = try TransferReadiness.prepare(
                on: link, timeoutMilliseconds: timeout,
                map: { region, descriptor in
                    var mapped = region
                    mapped.descriptor = descriptor.release()
                    return try LiveUpdateTarget.region(mapped)
                },
                beforeReady: { sample, socket in
                    // What this side decodes inside the pause, decoded once now.
                    TransferMessage.warmUpCoding(machine: sample)
                    guard let socket else { return }
                    let waiting = ControlServer(socketPath: socket.path, router: Router())
                    try waiting.start(adoptingListener: socket.descriptor, accepting: false)
                    server = waiting
                })
        } catch {
            giveUp(error.reason)
        }

        // 2. The paused machine and its host resources.
        let handoff: UpdateHandoff
        let machine: Machine
        var arrived: UInt64 = 0
        do {
            let (message, descriptors) = try link.receive(timeoutMilliseconds: timeout)
            arrived = MonotonicClock.nanoseconds()
            guard case .handoff(let sent) = message else { giveUp("expected the machine; got \(message)") }
            handoff = try sent.receiving(descriptors)
            // The memory arrived in step 1; these are the same files again.
            for region in handoff.regions { close(region.descriptor) }
            guard handoff.regions.map(\.name) == memory.regions.map(\.name),
                  handoff.regions.map(\.sizeInBytes) == memory.regions.map(\.sizeInBytes)
            else { giveUp("the machine's regions are not the memory handed over first") }
            machine = try LiveUpdateTarget.machine(of: handoff, memory: memory, shell: shell)
        } catch {
            giveUp("\(error)")
        }

        // 3. Run it, once the old VMM knows (it then ends at once).
        var sentRunning = false
        var (session, controller, setup) = UpdateResumption.continuation(of: handoff, machine: machine)
        if let server {
            // The handoff's copy of the control socket is the one the server already has.
            if let listener = setup.inheritedListener { close(listener) }
            setup.inheritedListener = nil
            server.replaceRoutes(with: Router(control: controller, version: EngramVersion.current))
            setup.server = server
        }
        return try MachineSession.run(
            machine, controller: controller, setup: setup,
            beforeStart: {
                let now = MonotonicClock.nanoseconds()
                // Too late to run here: the old VMM is about to give up on this one and resume the guest.
                if now - arrived > UInt64(timeout - MachineController.transferTakeoverMarginMilliseconds) * 1_000_000 {
                    giveUp("the machine took \((now - arrived) / 1_000_000) ms to build here; the previous VMM gives up at \(timeout) ms")
                }
                let downtime = handoff.pausedMilliseconds(at: now)
                // The point of no return: once the old VMM has this, it is gone.
                do { try link.send(.running(downtimeMilliseconds: downtime)) } catch { giveUp("\(error)") }
                sentRunning = true
                session.ended(UpdateResult(
                    update: handoff.update, status: "completed", binary: handoff.binary, statePath: handoff.statePath,
                    fromVersion: handoff.fromVersion, downtimeMilliseconds: downtime, saveMilliseconds: handoff.saveMilliseconds,
                    restoreMilliseconds: Double(now - arrived) / 1e6, mode: .transfer))
            },
            afterStart: {
                server?.setAccepting(true)
                Diagnostics.note("updated to \(handoff.binary) by transfer (update \(handoff.update), from version \(handoff.fromVersion), pid \(getpid()))")
            },
            startFailed: { error in
                // Before RUNNING went out the old VMM still has the guest: tell it, and leave its
                // socket file alone. After, the guest is only here: save it for a restore, as exec mode does.
                if !sentRunning { giveUp(error.description) }
                Diagnostics.note(UpdateResumption.saved(handoff, memory: memory, after: error.description).description)
                _exit(1)
            })
    }
}

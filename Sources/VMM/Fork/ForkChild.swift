import ControlAPI
import FoundationEssentials
import Glibc
import GuestMemory
import LinuxSystem
import Machine
import SnapshotFormat
import Migration

/// A fork's child (`engram fork-child`, started by the forking VMM with a socket to it): maps
/// the parent's memory copy-on-write and makes its VM, memory slots and vCPUs while the parent
/// still runs; then takes the paused machine with its own devices, serves its own control
/// socket, writes its console to its own log (input comes through PUT /vm/keyboard), and runs.
/// Any failure before it runs is told to the parent, and this process ends.
package enum ForkChild {
    package static func run(descriptor: CInt) throws(VMMError) -> Int32 {
        TerminationSignals.block()
        _ = ProcessImage.setCloseOnExec(descriptor, true)
        let link = TransferLink(DescriptorChannel(taking: OwnedFileDescriptor(taking: descriptor), peer: "the forking VMM"))
        let timeout = ForkChildProcess.timeoutMilliseconds
        func giveUp(_ reason: String) -> Never {
            try? link.send(.failed(reason))
            Diagnostics.note("fork child \(getpid()) could not start: \(reason)")
            _exit(1)
        }

        // 1. Ready while the parent runs: its memory mapped copy-on-write, the VM made.
        let memory: GuestMemoryMap
        let shell: MachineShell
        let base = "the memory of pid \(getppid()) at the fork"
        do {
            (memory, shell) = try TransferReadiness.prepare(on: link, timeoutMilliseconds: timeout) { region, descriptor in
                // The mapping keeps a descriptor of its own; this one closes when it goes.
                try GuestRegion(
                    name: region.name, sizeInBytes: region.sizeInBytes, copyOnWriteOf: descriptor.rawValue, at: 0, path: base,
                    kind: .forkCopyOnWrite(base: base))
            }
        } catch {
            giveUp(error.reason)
        }

        // 2. The machine as the parent paused it, with this child's devices.
        let plan: ForkChildPlan
        let machine: Machine
        do {
            // A reserved child waits for the fork as long as the parent lives (its end closes the socket).
            let message: TransferMessage
            do { (message, _) = try link.receive(timeoutMilliseconds: ForkChildProcess.reserveWaitMilliseconds) } catch {
                Diagnostics.note("fork child \(getpid()): the forking VMM ended before it forked (\(error))")
                _exit(0)
            }
            guard case .fork(let sent) = message else { giveUp("expected the machine; got \(message)") }
            plan = sent
            let overrides = try DeviceOverrides(parsingDisks: plan.disks, networks: plan.networks, vsock: plan.vsock)
            let record = try MachineStateRecord.decode([UInt8](plan.machine), from: "the forking VM's state").forkChild(plan.index, overrides: overrides)
            machine = try Machine(continuing: record, memory: memory, shell: shell, consoleLogPath: plan.consoleLog)
            if let base = plan.baseSnapshot, let id = plan.baseSnapshotID, id.count == 16 {
                try machine.adoptForkBase(path: base, snapshotID: SnapshotID(bytes: id))
            }
        } catch {
            giveUp("\(error)")
        }

        // 3. Run, once the parent knows.
        let controller = MachineController(machine: machine, liveUpdate: LiveUpdateSession(apiSocket: plan.apiSocket, consoleLogPath: plan.consoleLog))
        return try MachineSession.run(
            machine, controller: controller, setup: MachineSession.Setup(apiSocket: plan.apiSocket),
            beforeStart: {
                do { try machine.beginNewGeneration() } catch { giveUp("\(error)") }
                let downtime = Double(MonotonicClock.nanoseconds() - plan.pausedAtNanoseconds) / 1e6
                do { try link.send(.running(downtimeMilliseconds: downtime)) } catch { giveUp("\(error)") }
            },
            afterStart: { Diagnostics.note("fork child \(plan.index) runs (pid \(getpid()), control socket \(plan.apiSocket))") })
    }
}

import ArgumentParser
import ControlAPI
import Machine

/// Runs a built machine to its end: region report, control API, console, vCPUs, exit status.
/// Shared by `engram run`, `engram restore` and the new process of a live update.
enum MachineSession {
    /// How the session starts, beyond the machine itself.
    struct Setup {
        var apiSocket: String?
        /// The control socket's listening descriptor, inherited in a live update.
        var inheritedListener: CInt? = nil
        /// The terminal mode to put back at the end, from the VMM before a live update.
        var terminalMode: [UInt8]? = nil
        /// The vCPUs park at once (the guest was paused when handed over).
        var startPaused = false
        /// Print the regions and the control socket (not again after a live update).
        var announce = true
    }

    /// `beforeStart` runs after the console is attached and just before the vCPUs start;
    /// `afterStart` once they run; `afterEnd` once the machine has ended, before the control
    /// socket closes.
    static func run(
        _ machine: Machine, controller: MachineController, setup: Setup,
        beforeStart: () throws -> Void = {}, afterStart: () -> Void = {}, afterEnd: () -> Void = {}
    ) throws {
        if setup.announce { for line in RegionReport.lines(of: machine.memory) { Diagnostics.note(line) } }
        var server: ControlServer?
        if let apiSocket = setup.apiSocket {
            let started = ControlServer(socketPath: apiSocket, control: controller, version: EngramVersion.current)
            do {
                if let listener = setup.inheritedListener {
                    try started.start(adoptingListener: listener)
                } else {
                    try started.start()
                }
            } catch {
                started.stop()
                afterEnd()
                throw CommandFailure(error.description)
            }
            server = started
            if setup.announce { Diagnostics.note("control API on \(apiSocket)") }
        }
        let console = Console()
        controller.liveUpdate.attach(server: server, console: console)
        do {
            try TerminationSignals.watch { machine.finish(.terminatedBySignal($0)) }
            try console.attach(to: machine, terminalMode: setup.terminalMode)
            try beforeStart()
            try machine.start(paused: setup.startPaused)
        } catch {
            console.detach()
            server?.stop()
            afterEnd()
            if let failure = error as? CommandFailure { throw failure }
            throw CommandFailure("\(error)")
        }
        afterStart()
        let outcome = controller.liveUpdate.mainThread.waitForOutcome(of: machine)
        console.detach()
        afterEnd()
        server?.stop()
        Diagnostics.note(outcome.message)
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }
}

import ArgumentParser
import ControlAPI
import Machine

/// Runs a built machine to its end: region report, control API, console, vCPUs, exit status.
/// Shared by `engram run` and `engram restore`.
enum MachineSession {
    /// `beforeStart` runs after the console is attached and just before the vCPUs start;
    /// `afterEnd` runs once the machine has ended, before the control socket closes.
    static func run(
        _ machine: Machine, controller: MachineController, apiSocket: String?,
        beforeStart: () throws -> Void = {}, afterEnd: () -> Void = {}
    ) throws {
        for line in RegionReport.lines(of: machine.memory) { Diagnostics.note(line) }
        var server: ControlServer?
        if let apiSocket {
            let started = ControlServer(socketPath: apiSocket, control: controller, version: EngramVersion.current)
            do { try started.start() } catch { throw CommandFailure(error.description) }
            server = started
            Diagnostics.note("control API on \(apiSocket)")
        }
        let console = Console()
        do {
            try TerminationSignals.watch { machine.finish(.terminatedBySignal($0)) }
            try console.attach(to: machine)
            try beforeStart()
            try machine.start()
        } catch {
            console.detach()
            server?.stop()
            afterEnd()
            if let failure = error as? CommandFailure { throw failure }
            throw CommandFailure("\(error)")
        }
        let outcome = machine.waitForOutcome()
        console.detach()
        afterEnd()
        server?.stop()
        Diagnostics.note(outcome.message)
        if outcome.exitStatus != 0 { throw ExitCode(outcome.exitStatus) }
    }
}

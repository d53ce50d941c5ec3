import ControlAPI
import LinuxSystem
import Machine

/// Runs a built machine to its end: region report, control API, console, vCPUs, exit status.
/// Shared by `engram run`, `engram restore` and the new process of a live update.
package enum MachineSession {
    /// How the session starts, beyond the machine itself.
    package struct Setup {
        package var apiSocket: String?
        /// The control socket's listening descriptor, inherited in a live update.
        package var inheritedListener: CInt? = nil
        /// The terminal mode to put back at the end, from the VMM before a live update.
        package var terminalMode: [UInt8]? = nil
        /// The vCPUs park at once (the guest was paused when handed over).
        package var startPaused = false
        /// Print the regions and the control socket (not again after a live update).
        package var announce = true
        /// A control server already serving (a standby VMM's, whose routes become this VM's).
        package var server: ControlServer? = nil
        /// Start the thread that ends the machine on SIGINT, SIGTERM and SIGHUP (a standby VMM
        /// has its own).
        package var watchSignals = true

        package init(apiSocket: String?) { self.apiSocket = apiSocket }
    }

    /// `beforeStart` runs after the console is attached and just before the vCPUs start;
    /// `afterStart` once they run; `afterEnd` once the machine has ended, before the control
    /// socket closes. Returns the exit status the machine's end calls for (0 for a guest
    /// power-off); throws if the machine could not start.
    /// Test only: set, the machine's start fails as a thread that cannot be spawned would make
    /// it, so a test can see what each caller does then.
    static let startFailureVariable = "ENGRAM_TEST_START_FAILURE"

    package static func run(
        _ machine: Machine, controller: MachineController, setup: Setup,
        beforeStart: () throws(VMMError) -> Void = {}, afterStart: () -> Void = {}, afterEnd: () -> Void = {},
        startFailed: (VMMError) -> Void = { _ in }
    ) throws(VMMError) -> Int32 {
        if setup.announce { for line in RegionReport.lines(of: machine.memory) { Diagnostics.note(line) } }
        var server = setup.server
        if server == nil, let apiSocket = setup.apiSocket {
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
                throw VMMError.failed("\(error)")
            }
            server = started
            if setup.announce { Diagnostics.note("control API on \(apiSocket)") }
        }
        let console = Console()
        controller.liveUpdate.attach(server: server, console: console)
        do throws(VMMError) {
            do throws(MachineError) {
                if setup.watchSignals { try TerminationSignals.watch { machine.finish(.terminatedBySignal($0)) } }
                try console.attach(to: machine, terminalMode: setup.terminalMode)
            } catch { throw .failed(error.description) }
            try beforeStart()
            if ProcessEnvironment.value(startFailureVariable) != nil { throw .failed("the machine did not start (\(startFailureVariable) is set)") }
            do throws(MachineError) { try machine.start(paused: setup.startPaused) } catch { throw .failed(error.description) }
        } catch {
            console.detach()
            // Before the server stops: stopping waits for its worker, which may be waiting on this
            // very start (a standby VMM's PUT /vm/restore).
            startFailed(error)
            server?.stop()
            afterEnd()
            throw error
        }
        afterStart()
        let outcome = controller.liveUpdate.mainThread.waitForOutcome(of: machine)
        console.detach()
        afterEnd()
        server?.stop()
        Diagnostics.note(outcome.message)
        return outcome.exitStatus
    }
}

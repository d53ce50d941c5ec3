import ControlAPI
import LinuxSystem
import Machine

/// `engram standby`: a VMM made ready for a snapshot it does not know yet. It serves the control
/// API until PUT /vm/restore names one, becomes that VM (same process, same socket, the VM's
/// routes from then on) and runs it to its end; a refused snapshot leaves it waiting for the
/// next request. SIGTERM or PUT /vm/shutdown ends an unused one cleanly.
package enum StandbySession {
    package static func run(_ options: StandbyOptions) throws(VMMError) -> Int32 {
        TerminationSignals.block()
        var options = options
        try options.prepareSecurity()
        let standby = try StandbyMachine(cpuCount: options.cpuCount, memorySizeInBytes: options.memorySizeInBytes, hugetlbfs: options.hugetlbfs)
        let handoff = StandbyHandoff()
        let control = StandbyController(standby: standby, options: options, handoff: handoff)
        let server = ControlServer(socketPath: options.apiSocket, router: Router(standby: control, version: EngramVersion.current))
        do { try server.start() } catch {
            server.stop()
            throw .failed("\(error)")
        }
        do { try TerminationSignals.watch { handoff.terminate(signal: $0) } } catch {
            server.stop()
            throw .failed(error.description)
        }
        warmUpControlPath(options.apiSocket)
        StandbyRehearsal.run(sample: standby.sampleState, beside: options.apiSocket)
        let pages = options.hugetlbfs == nil ? "" : " on huge pages"
        Diagnostics.note("standby: \(options.cpuCount) vCPUs, \(options.memorySizeInBytes >> 20) MiB\(pages), control API on \(options.apiSocket)")
        guard case .restore(let vm, let arrived) = handoff.waitForRequest() else {
            server.stop()
            Diagnostics.note("standby VMM ended unused")
            return 0
        }
        server.replaceRoutes(with: Router(control: vm.controller, version: EngramVersion.current))
        var setup = MachineSession.Setup(apiSocket: options.apiSocket)
        setup.server = server
        setup.watchSignals = false
        setup.announce = false
        do {
            return try MachineSession.run(
                vm.machine, controller: vm.controller, setup: setup,
                beforeStart: { () throws(VMMError) in try vm.prepareToRun(since: arrived) },
                afterStart: { handoff.started(after: ContinuousClock.now - arrived) },
                afterEnd: { vm.fill?.stop() },
                startFailed: { handoff.failedToStart($0) })
        } catch {
            handoff.failedToStart(error)  // a failure before the session's start (no-op once told)
            throw error
        }
    }

    /// The control API's path once ahead: a request of its own (the server's first pays ~4 ms of
    /// lazy set-up here), the restore request's decoding and its answer's encoding (the first JSON
    /// coding of a type pays for runtime lookups), which the client would otherwise wait for.
    private static func warmUpControlPath(_ socket: String) {
        let client = try? ControlClient(socketPath: socket, timeoutSeconds: 5)
        _ = try? client?.send(route: .vm)
        // A restore request refused before anything is touched (no such memory mode): the path of a
        // request with a body, through to its refusal.
        _ = try? client?.send(route: .restore, body: Array(#"{"snapshot": "", "memory": "warm-up"}"#.utf8))
        let body = RequestBody(Array(#"{"snapshot": "warm-up", "memory": "map", "verify": false, "disks": [], "nets": [], "vsock": null}"#.utf8))
        _ = try? body.decode(StandbyRestoreRequest.self)
        _ = try? Response.json(StandbyRestoreReport(state: "running", snapshot: "warm-up", memory: "map", millisecondsToRunning: 1))
    }
}

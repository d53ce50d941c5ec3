/// The routes of a standby VMM, and PUT /vm/restore's answer from a VMM that already runs a VM.
package enum StandbyEndpoint {
    /// What a VMM with a running VM answers to PUT /vm/restore.
    package static let restoreNeedsStandby =
        "this VMM already runs a VM; PUT /vm/restore is for a standby VMM (engram standby)"

    /// PUT /vm/restore on a VMM that runs a VM: 409, naming what the route is for.
    package static func registerRefusal(in router: inout Router) {
        router.add(.restore) { _ in throw VMControlError.conflict(reason: restoreNeedsStandby) }
    }
}

extension Router {
    /// A standby VMM's routes: GET /version, GET /vm, PUT /vm/restore and PUT /vm/shutdown; every
    /// other route of the control API answers 409 until a restore has made it a VM.
    package init(standby control: any StandbyControl, version: String) {
        self.init()
        for route in APIRoute.all {
            add(route) { _ in
                throw VMControlError.invalidState(operation: "serve \(route)", state: "on standby (no VM until PUT /vm/restore)")
            }
        }
        VersionEndpoint.register(in: &self, version: version)
        add(.vm) { _ in try .json(control.standbyInfo()) }
        add(.restore) { body in
            let request = try body.decode(StandbyRestoreRequest.self)
            guard !request.snapshot.isEmpty else { throw RequestError.invalidBody(reason: "snapshot must name a snapshot file, tcp:// or s3:// source") }
            return try .json(try control.restore(request))
        }
        add(.shutdown) { _ in
            try control.shutdown()
            return try .json(VMStateReport(state: "stopping"))
        }
    }
}

/// The routes of a VM's control API, translated to `VMControl` calls.
package enum VMRoutes {
    package static func router(for control: any VMControl, version: String) -> Router {
        var router = Router()
        router.add("GET", "/version") { _ in .json(VersionInfo(engram: version, api: 1)) }
        router.add("GET", "/vm") { _ in .json(control.vmInfo()) }
        router.add("GET", "/vm/memory") { _ in .json(MemoryReport(regions: control.memoryRegions())) }
        router.add("PUT", "/vm/pause") { _ in perform(control) { () throws(VMControlError) in try control.pause() } }
        router.add("PUT", "/vm/resume") { _ in perform(control) { () throws(VMControlError) in try control.resume() } }
        router.add("PUT", "/vm/shutdown") { _ in
            let state = control.vmInfo().state
            guard state != "stopping" else { return failure(.invalidState(operation: "shut down", state: state)) }
            // Answer first, then end the VM, so the client always gets its 200.
            return Response(status: 200, body: Response.json(StateReport(state: "stopping")).body) { try? control.shutdown() }
        }
        return router
    }

    private static func perform(_ control: any VMControl, _ action: () throws(VMControlError) -> Void) -> Response {
        do {
            try action()
            return .json(StateReport(state: control.vmInfo().state))
        } catch {
            return failure(error)
        }
    }

    private static func failure(_ error: VMControlError) -> Response {
        switch error {
        case .invalidState: .error(409, error.description)
        case .failed: .error(500, error.description)
        }
    }
}

/// GET /version body.
package struct VersionInfo: Codable, Sendable, Equatable {
    package var engram: String
    package var api: Int
}

/// GET /vm/memory body.
package struct MemoryReport: Codable, Sendable, Equatable {
    package var regions: [MemoryRegionInfo]
}

/// Body of PUT /vm/pause, /vm/resume and /vm/shutdown: the state afterwards.
package struct StateReport: Codable, Sendable, Equatable {
    package var state: String
}

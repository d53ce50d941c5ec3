
/// PUT /vm/update starts a live update (exec of a new VMM binary, guest memory kept in place);
/// GET /vm/update reports the running VMM and how the last update ended.
package enum UpdateEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.update) { body in
            let request = body.isEmpty ? UpdateRequest() : try body.decode(UpdateRequest.self)
            if request.binary?.isEmpty == true { throw RequestError.invalidBody(reason: "binary must name the new Engram executable") }
            if request.statePath?.isEmpty == true { throw RequestError.invalidBody(reason: "state_path must name a file") }
            let start = try control.update(request)
            var response = try Response.json(start.accepted, status: 202)
            response.afterSent = start.proceed
            return response
        }
        router.add(.updateStatus) { _ in try .json(control.updateStatus()) }
    }
}

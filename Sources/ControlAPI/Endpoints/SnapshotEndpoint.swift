
/// PUT /vm/snapshot: pause, write a full or diff snapshot file, resume (or stay paused).
package enum SnapshotEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.snapshot) { body in
            let request = try body.decode(SnapshotRequest.self)
            guard !request.path.isEmpty else { throw RequestError.invalidBody(reason: "path must name the snapshot file") }
            return try .json(try control.snapshot(request))
        }
    }
}


/// PUT /vm/migrate starts a live migration to a waiting destination; GET /vm/migrate reports
/// its progress (passes, bytes, dirty rate, expected downtime) and how it ended.
package enum MigrationEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.migrate) { body in
            let request = try body.decode(MigrationRequestBody.self)
            guard request.to.hasPrefix("tcp://") else { throw RequestError.invalidBody(reason: "to must be tcp://HOST:PORT of a destination (engram receive)") }
            if let mode = request.mode, !["precopy", "postcopy", "shared"].contains(mode) {
                throw RequestError.invalidBody(reason: "mode must be precopy, postcopy or shared, not \(mode)")
            }
            if let limit = request.maxDowntimeMs, !(limit > 0 && limit <= 600_000) {
                throw RequestError.invalidBody(reason: "max_downtime_ms must be more than 0 and at most 600000")
            }
            if let channels = request.channels {
                guard (1...16).contains(channels) else { throw RequestError.invalidBody(reason: "channels must be 1 to 16, not \(channels)") }
                guard channels == 1 || (request.mode ?? "precopy") == "precopy" else {
                    throw RequestError.invalidBody(reason: "channels: only a pre-copy migration sends pages over several connections")
                }
            }
            guard request.secretFile != nil || request.tlsCert != nil else {
                throw RequestError.invalidBody(reason: "secret_file (the shared secret's file) or tls_cert, tls_key and tls_ca are needed")
            }
            for (name, value) in [("secret_file", request.secretFile), ("tls_cert", request.tlsCert), ("tls_key", request.tlsKey), ("tls_ca", request.tlsCa)] {
                if value?.isEmpty == true { throw RequestError.invalidBody(reason: "\(name) must name a file, not be empty") }
            }
            return try .json(try control.migrate(request), status: 202)
        }
        router.add(.migrationStatus) { _ in try .json(control.migrationStatus()) }
    }
}

import LinuxSystem
import Machine
import Paging
import SnapshotFormat
import Transport

/// Post-copy's source side: once the guest is paused, its live memory is served with the page
/// protocol on a fresh port (same secret and TLS as the migration), so the destination restores from
/// it exactly as from `engram serve`, until it has every page.
final class PostcopyPageServer: Sendable {
    let server: PageServer
    let fingerprint: UInt64

    /// Serves the paused `machine`'s memory on every interface of `family` the migration uses,
    /// on a port the kernel picks. Call only once the guest is paused.
    init(machine: Machine, shapes: [SnapshotRegionShape], security: TransportSecurity, ipv6: Bool, log: @escaping @Sendable (String) -> Void) throws {
        var generator = SystemRandomNumberGenerator()
        fingerprint = UInt64.random(in: 1 ... .max, using: &generator)
        let memory = try LiveServedMemory(regions: machine.memory.regions, shapes: shapes, state: [], fingerprint: fingerprint)
        server = try PageServer(memory: memory, security: security, listening: try Endpoint(parsing: ipv6 ? "[::]:0" : "0.0.0.0:0", listening: true),
                                log: log)
        try NamedThread.spawnDetached(name: "engram-postcopy", role: .migration) { [server] in
            do { try server.run() } catch { log("post-copy page server stopped: \(error)") }
        }
    }

    var port: UInt16 { server.port }

    var bytesSent: UInt64 { server.bytesSent }

    func stop() { server.stop() }
}

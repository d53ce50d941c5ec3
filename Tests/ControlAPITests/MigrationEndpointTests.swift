import ControlAPI
import Testing

/// PUT and GET /vm/migrate: bodies checked before the machine is asked; 409 from a VM that cannot migrate.
@Suite struct MigrationEndpointTests {
    func put(_ json: String) -> Response {
        Router(control: FakeVMControl(), version: "1").respond(method: "PUT", target: "/vm/migrate", body: RequestBody(Array(json.utf8)))
    }

    @Test func badBodiesAreRefusedWith400() {
        #expect(put(#"{"to":"10.0.0.1:7000","secret_file":"/s"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","mode":"teleport","secret_file":"/s"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","max_downtime_ms":0,"secret_file":"/s"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","secret_file":""}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","channels":0,"secret_file":"/s"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","channels":17,"secret_file":"/s"}"#).status == 400)
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","mode":"postcopy","channels":2,"secret_file":"/s"}"#).status == 400)
        // Well formed: past the checks, to the VM (which cannot migrate).
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","channels":4,"secret_file":"/s"}"#).status == 409)
    }

    @Test func aVMThatCannotMigrateSays409AndStatusIsIdle() {
        #expect(put(#"{"to":"tcp://10.0.0.1:7000","secret_file":"/s"}"#).status == 409)
        let status = Router(control: FakeVMControl(), version: "1").respond(method: "GET", target: "/vm/migrate", body: RequestBody([]))
        #expect(status.status == 200)
        #expect(String(decoding: status.body, as: UTF8.self).contains(#""status":"idle""#))
    }
}

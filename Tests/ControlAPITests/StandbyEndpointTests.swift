import ControlAPI
import Foundation
import LinuxSystem
import Testing

/// A standby VMM's routes: its shape on GET /vm, PUT /vm/restore decoded and answered, 409 for
/// every VM route until then; and a VMM with a VM refusing PUT /vm/restore.
@Suite struct StandbyEndpointTests {
    private final class FakeStandby: StandbyControl {
        let requests = Locked<[StandbyRestoreRequest]>([])
        let ended = Locked(false)

        func standbyInfo() -> VMInfo { VMInfo(state: "standby", vcpus: 2, uptimeSeconds: 0, memorySizeInBytes: 1 << 30) }

        func restore(_ request: StandbyRestoreRequest) throws(VMControlError) -> StandbyRestoreReport {
            requests.withLock { $0.append(request) }
            guard request.snapshot != "/wrong.snap" else { throw .invalidRequest(reason: "/wrong.snap has 2 GiB of RAM") }
            return StandbyRestoreReport(state: "running", snapshot: request.snapshot, memory: request.memory ?? "map", millisecondsToRunning: 1.25)
        }

        func shutdown() throws(VMControlError) { ended.withLock { $0 = true } }
    }

    private func text(_ response: Response) -> String { String(decoding: response.body, as: UTF8.self) }

    @Test func aStandbyVMMShowsItsShapeAndRestoresWhatTheBodyNames() {
        let standby = FakeStandby()
        let router = Router(standby: standby, version: "1")
        #expect(text(router.respond(method: "GET", target: "/vm", body: RequestBody()))
            == #"{"memory_size_in_bytes":1073741824,"state":"standby","uptime_seconds":0,"vcpus":2}"#)
        let body = #"{"snapshot": "/a.snap", "memory": "lazy", "disks": ["/d.img,readonly"], "nets": ["tap=t0"], "vsock": "3,/v.sock"}"#
        let answer = router.respond(method: "PUT", target: "/vm/restore", body: RequestBody(Array(body.utf8)))
        #expect(answer.status == 200)
        #expect(text(answer) == #"{"memory":"lazy","milliseconds_to_running":1.25,"snapshot":"/a.snap","state":"running"}"#)
        #expect(standby.requests.withLock { $0 } == [
            StandbyRestoreRequest(snapshot: "/a.snap", memory: "lazy", disks: ["/d.img,readonly"], nets: ["tap=t0"], vsock: "3,/v.sock")
        ])
    }

    @Test func refusalsAndBadBodiesAre4xxAndVMRoutesWaitForARestore() {
        let standby = FakeStandby()
        let router = Router(standby: standby, version: "1")
        #expect(router.respond(method: "PUT", target: "/vm/restore", body: RequestBody(Array(#"{"snapshot": "/wrong.snap"}"#.utf8))).status == 400)
        #expect(router.respond(method: "PUT", target: "/vm/restore", body: RequestBody(Array(#"{"snapshot": ""}"#.utf8))).status == 400)
        #expect(router.respond(method: "PUT", target: "/vm/restore", body: RequestBody(Array(#"{"memory": "map"}"#.utf8))).status == 400)
        let pause = router.respond(method: "PUT", target: "/vm/pause", body: RequestBody())
        #expect(pause.status == 409)
        #expect(text(pause).contains("PUT /vm/restore"), "\(text(pause))")
        #expect(router.respond(method: "GET", target: "/version", body: RequestBody()).status == 200)
        #expect(router.respond(method: "PUT", target: "/vm/shutdown", body: RequestBody()).status == 200)
        #expect(standby.ended.withLock { $0 })
    }

    @Test func aVMMThatRunsAVMRefusesRestoreWith409() {
        let answer = Router(control: FakeVMControl(), version: "1").respond(
            method: "PUT", target: "/vm/restore", body: RequestBody(Array(#"{"snapshot": "/a.snap"}"#.utf8)))
        #expect(answer.status == 409)
        #expect(text(answer).contains("engram standby"), "\(text(answer))")
    }
}

import ControlAPI
import Foundation
import Testing

/// The /vm routes through the router alone, with the fake machine behind them: no socket, no threads.
@Suite struct VMEndpointTests {
    private let fake = FakeVMControl()
    private let router: Router

    init() { router = Router(control: fake, version: "0.0.1") }

    private func respond(_ method: String, _ target: String, _ body: String = "") -> (status: Int, json: Any?, text: String) {
        let response = router.respond(method: method, target: target, body: RequestBody(Array(body.utf8)))
        let text = String(decoding: response.body, as: UTF8.self)
        return (response.status, try? JSONSerialization.jsonObject(with: Data(response.body)), text)
    }

    @Test func memoryListsRegionsWithSnakeCaseKeys() throws {
        let (status, json, _) = respond("GET", "/vm/memory")
        #expect(status == 200)
        let top = try #require(json as? [String: Any])
        #expect(Array(top.keys) == ["regions"])
        let regions = try #require(top["regions"] as? [[String: Any]])
        #expect(regions.count == 2)
        #expect(Set(regions[0].keys) == ["name", "size_in_bytes", "backing", "path", "ranges"])
        #expect(regions[0]["name"] as? String == "ram")
        #expect(regions[0]["path"] as? String == "/dev/shm/vm.ram")
        #expect(regions[1]["backing"] as? String == "memfd")
        #expect(regions[1]["path"] == nil)              // no name in the file system: the key is left out
        let range = try #require((regions[1]["ranges"] as? [[String: Any]])?.first)
        #expect(Set(range.keys) == ["guest_address", "size_in_bytes", "region_offset"])
        #expect((range["guest_address"] as? NSNumber)?.uint64Value == 0xfd00_0000)
        #expect((range["size_in_bytes"] as? NSNumber)?.uint64Value == 16 << 20)
        #expect(fake.calls == ["memoryRegions"])
    }

    @Test func vmInfoKeys() throws {
        let (status, json, _) = respond("GET", "/vm")
        #expect(status == 200)
        let info = try #require(json as? [String: Any])
        #expect(Set(info.keys) == ["state", "vcpus", "uptime_seconds", "memory_size_in_bytes"])
        #expect((info["memory_size_in_bytes"] as? NSNumber)?.uint64Value == 512 << 20)
        #expect((info["uptime_seconds"] as? NSNumber)?.doubleValue == 1.5)
    }

    @Test func pauseTwiceIsAConflict() {
        #expect(respond("PUT", "/vm/pause").text == #"{"state":"paused"}"#)
        let second = respond("PUT", "/vm/pause")
        #expect(second.status == 409)
        #expect(second.text == #"{"error":"cannot pause: the VM is paused"}"#)
        #expect(respond("GET", "/vm").text.contains(#""state":"paused""#))
        #expect(respond("PUT", "/vm/resume").text == #"{"state":"running"}"#)
        #expect(fake.calls == ["pause", "vmInfo", "pause", "vmInfo", "resume", "vmInfo"])
    }

    @Test func actionsIgnoreABody() {
        let response = respond("PUT", "/vm/pause", #"{"anything": true}"#)
        #expect(response.status == 200)
        #expect(response.text == #"{"state":"paused"}"#)
    }

    @Test func shutdownCallsTheMachineOnceAndReportsStopping() {
        let response = respond("PUT", "/vm/shutdown")
        #expect(response.status == 200)
        #expect(response.text == #"{"state":"stopping"}"#)
        #expect(fake.calls == ["shut down", "vmInfo"])
        #expect(respond("PUT", "/vm/resume").text == #"{"error":"cannot resume: the VM is stopping"}"#)
    }

    @Test func readsNeverCallActions() {
        _ = respond("GET", "/vm")
        _ = respond("GET", "/vm/memory")
        _ = respond("GET", "/version")
        #expect(respond("GET", "/vm/shutdown").status == 405)
        #expect(respond("PUT", "/vm").status == 405)
        #expect(respond("GET", "/vm/").status == 404)   // exact paths only
        #expect(fake.calls == ["vmInfo", "memoryRegions"])
    }

    @Test func wrongMethodNamesTheAllowedOne() throws {
        let response = router.respond(method: "GET", target: "/vm/pause", body: RequestBody())
        #expect(response.status == 405)
        #expect(response.headers["Allow"] == "PUT")
        let body = try JSONDecoder().decode(ErrorBody.self, from: Data(response.body))
        #expect(body.error == "GET is not allowed on /vm/pause; use PUT")
    }
}

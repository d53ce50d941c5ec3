import ControlAPI
import Foundation
import Testing

/// The routing table alone: no socket, no threads.
@Suite struct RouterTests {
    private struct Resize: Codable { var sizeInBytes: UInt64 }

    private func decodeError(_ response: Response) -> String? {
        try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)).error
    }

    @Test func unknownPathIs404() {
        let response = Router(control: FakeVMControl(), version: "1.2.3").respond(method: "GET", target: "/nope", body: RequestBody())
        #expect(response.status == 404)
        #expect(decodeError(response) == "no such resource: /nope")
    }

    @Test func wrongMethodIs405WithAllow() {
        let router = Router(control: FakeVMControl(), version: "1.2.3")
        let response = router.respond(method: "DELETE", target: "/vm", body: RequestBody())
        #expect(response.status == 405)
        #expect(response.headers["Allow"] == "GET")
        #expect(decodeError(response) == "DELETE is not allowed on /vm; use GET")
    }

    @Test func queryStringIsIgnoredForMatching() throws {
        let response = Router(control: FakeVMControl(), version: "1.2.3").respond(method: "GET", target: "/version?x=1", body: RequestBody())
        #expect(response.status == 200)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"api":1,"engram":"1.2.3"}"#)
    }

    @Test func vmInfoIsSnakeCase() {
        let response = Router(control: FakeVMControl(), version: "1").respond(method: "GET", target: "/vm", body: RequestBody())
        #expect(String(decoding: response.body, as: UTF8.self)
            == #"{"memory_size_in_bytes":536870912,"state":"running","uptime_seconds":1.5,"vcpus":2}"#)
    }

    @Test func handlerErrorsMapToStatuses() {
        var router = Router()
        router.add("PUT", "/conflict") { _ in throw VMControlError.invalidState(operation: "pause", state: "paused") }
        router.add("PUT", "/failed") { _ in throw VMControlError.failed(operation: "pause", reason: "vCPU 1 did not stop") }
        router.add("PUT", "/other") { _ in throw CocoaError(.fileNoSuchFile) }
        router.add("PUT", "/nan") { _ in try .json(["value": Double.nan]) }
        let statuses = ["/conflict", "/failed", "/other", "/nan"].map { router.respond(method: "PUT", target: $0, body: RequestBody()).status }
        #expect(statuses == [409, 500, 500, 500])
        #expect(decodeError(router.respond(method: "PUT", target: "/conflict", body: RequestBody())) == "cannot pause: the VM is paused")
    }

    @Test func bodiesDecodeOrGive400() {
        var router = Router()
        router.add("PUT", "/resize") { body in
            let request = try body.decode(Resize.self)
            return try .json(Resize(sizeInBytes: request.sizeInBytes * 2))
        }
        let good = router.respond(method: "PUT", target: "/resize", body: RequestBody(Array(#"{"size_in_bytes": 21}"#.utf8)))
        #expect(good.status == 200)
        #expect(String(decoding: good.body, as: UTF8.self) == #"{"size_in_bytes":42}"#)

        let cases: [(String, String)] = [
            ("", "invalid JSON body: this request needs a JSON body"),
            ("{not json", "invalid JSON body: not valid JSON"),
            ("{}", "invalid JSON body: missing field size_in_bytes"),
            (#"{"size_in_bytes": "big"}"#, "invalid JSON body: size_in_bytes should be of type UInt64"),
        ]
        for (text, message) in cases {
            let response = router.respond(method: "PUT", target: "/resize", body: RequestBody(Array(text.utf8)))
            #expect(response.status == 400, "\(text)")
            #expect(decodeError(response)?.hasPrefix(message) == true, "\(text): \(decodeError(response) ?? "")")
        }
    }

    @Test func errorMessagesStayOnOneLine() {
        let response = Response(error: .internalFailure(reason: "first\nsecond\r\nthird"))
        #expect(decodeError(response) == "internal error: first second third")
        #expect(!response.body.contains(UInt8(ascii: "\n")))
    }

    @Test func routesListEveryRoute() {
        let routes = Router(control: FakeVMControl(), version: "1").routes.map { "\($0.method) \($0.path)" }
        #expect(routes == ["GET /metrics", "GET /version", "GET /vm", "GET /vm/balloon", "PUT /vm/balloon", "GET /vm/balloon/statistics",
                           "PATCH /vm/balloon/statistics", "GET /vm/devices", "PATCH /vm/disk", "PUT /vm/fork", "PUT /vm/fork/reserve", "PUT /vm/keyboard", "GET /vm/memory", "GET /vm/memory/stats", "GET /vm/migrate", "PUT /vm/migrate",
                           "PUT /vm/pause", "PUT /vm/restore", "PUT /vm/resume", "PUT /vm/shutdown", "PUT /vm/snapshot", "GET /vm/update", "PUT /vm/update",
                           "GET /vm/vcpus"])
    }

    @Test func laterRouteReplacesEarlier() {
        var router = Router()
        router.add("get", "/x") { _ in Response(status: 201) }
        router.add("GET", "/x") { _ in .noContent }
        #expect(router.respond(method: "GET", target: "/x", body: RequestBody()).status == 204)
    }
}

/// Indenting answers for `engram ctl`.
@Suite struct JSONIndenterTests {
    @Test func indentsKeepingValuesExactly() {
        let text = #"{"a":[1,{"b":"x, y: {z}"},[]],"big":18446744073709551615,"e":{},"s":"q\"}"}"#
        #expect(JSONIndenter.indent(Array(text.utf8)) == """
            {
              "a": [
                1,
                {
                  "b": "x, y: {z}"
                },
                []
              ],
              "big": 18446744073709551615,
              "e": {},
              "s": "q\\"}"
            }
            """)
    }

    @Test func rejectsWhatIsNotJSON() {
        for text in ["Internal Server Error", "{oops", "{} trailing", "", "<html>"] {
            #expect(JSONIndenter.indent(Array(text.utf8)) == nil, "\(text)")
        }
    }

    @Test func errorBodyMessage() {
        #expect(ErrorBody.message(in: Array(#"{"error":"cannot pause: the VM is paused"}"#.utf8)) == "cannot pause: the VM is paused")
        #expect(ErrorBody.message(in: Array("<html>".utf8)) == nil)
    }
}

@Suite struct SnapshotRouteTests {
    @Test func snapshotNeedsAKnownKindAndAPath() {
        let router = Router(control: FakeVMControl(), version: "1")
        let missing = router.respond(method: "PUT", target: "/vm/snapshot", body: RequestBody([]))
        #expect(missing.status == 400)
        let unknown = router.respond(method: "PUT", target: "/vm/snapshot", body: RequestBody(Array(#"{"path":"/tmp/a","kind":"delta"}"#.utf8)))
        #expect(unknown.status == 400)
        #expect(String(decoding: unknown.body, as: UTF8.self).contains(#"expected \"full\" or \"diff\""#))
        for body in [#"{"path":"/tmp/a"}"#, #"{"path":"/tmp/a","kind":"diff"}"#] {
            let unsupported = router.respond(method: "PUT", target: "/vm/snapshot", body: RequestBody(Array(body.utf8)))
            #expect(unsupported.status == 500, "\(body)")  // the fake cannot snapshot
        }
    }

    @Test func refusedSnapshotsAre400Or409WithTheMachinesMessage() {
        var router = Router()
        router.add("PUT", "/conflict") { _ in throw VMControlError.conflict(reason: "take a full one first") }
        router.add("PUT", "/invalid") { _ in throw VMControlError.invalidRequest(reason: "wrong directory") }
        let conflict = router.respond(method: "PUT", target: "/conflict", body: RequestBody([]))
        #expect(conflict.status == 409 && String(decoding: conflict.body, as: UTF8.self) == #"{"error":"take a full one first"}"#)
        let invalid = router.respond(method: "PUT", target: "/invalid", body: RequestBody([]))
        #expect(invalid.status == 400 && String(decoding: invalid.body, as: UTF8.self) == #"{"error":"wrong directory"}"#)
    }
}

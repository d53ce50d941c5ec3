import ControlAPI
import Foundation
import Testing

/// PUT /vm/keyboard through the router, with the fake machine behind it.
@Suite struct KeyboardEndpointTests {
    private let fake = FakeVMControl()
    private let router: Router

    init() { router = Router(control: fake, version: "0.0.1") }

    private func put(_ body: String) -> (status: Int, text: String) {
        let response = router.respond(method: "PUT", target: "/vm/keyboard", body: RequestBody(Array(body.utf8)))
        return (response.status, String(decoding: response.body, as: UTF8.self))
    }

    @Test func eventsReachTheMachineInOrder() {
        let answer = put(#"{"events":[{"keysym":97,"down":true},{"keysym":97,"down":false},{"keysym":65293,"down":true}]}"#)
        #expect(answer.status == 200)
        #expect(answer.text == #"{"accepted":3}"#)
        #expect(fake.typed.withLock { $0 } == [
            KeyboardEvent(keysym: 0x61, down: true), KeyboardEvent(keysym: 0x61, down: false), KeyboardEvent(keysym: 0xff0d, down: true),
        ])
    }

    @Test func aFullKeyboardTakesFewer() {
        fake.keyboardRoom.withLock { $0 = 1 }
        #expect(put(#"{"events":[{"keysym":97,"down":true},{"keysym":97,"down":false}]}"#).text == #"{"accepted":1}"#)
    }

    @Test func badBodiesAreRefusedInOneLine() {
        let missing = put(#"{"events":[{"keysym":97}]}"#)
        #expect(missing.status == 400)
        #expect(missing.text.contains("down"))
        let many = "{\"events\":[" + Array(repeating: #"{"keysym":97,"down":true}"#, count: 1025).joined(separator: ",") + "]}"
        let tooMany = put(many)
        #expect(tooMany.status == 400)
        #expect(tooMany.text.contains("at most 1024"))
        #expect(put(#"{"events":[{"keysym":-1,"down":true}]}"#).status == 400)
        #expect(fake.typed.withLock { $0 }.isEmpty)
    }
}

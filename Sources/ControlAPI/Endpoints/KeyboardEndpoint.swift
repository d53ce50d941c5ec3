
/// PUT /vm/keyboard: keys typed on the guest's PS/2 keyboard (a display's viewers send them here).
package enum KeyboardEndpoint {
    package static func register(in router: inout Router, control: any VMControl) {
        router.add(.keyboard) { body in
            let input = try body.decode(KeyboardInput.self)
            guard input.events.count <= KeyboardInput.maximumEvents else {
                throw RequestError.invalidBody(reason: "\(input.events.count) events; at most \(KeyboardInput.maximumEvents) per request")
            }
            return try .json(KeyboardReport(accepted: try control.keyboard(input.events)))
        }
    }
}

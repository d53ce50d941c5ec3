/// PUT /vm/keyboard body: key presses and releases, in order, as X11 keysyms (what RFB sends).
package struct KeyboardInput: Codable, Sendable, Equatable {
    package var events: [KeyboardEvent]

    /// At most this many events per request.
    package static let maximumEvents = 1024

    package init(events: [KeyboardEvent]) { self.events = events }
}

/// One key event: an X11 keysym (e.g. 0x61 "a", 0xff0d Return) and whether the key went down.
package struct KeyboardEvent: Codable, Sendable, Equatable {
    package var keysym: UInt32
    package var down: Bool

    package init(keysym: UInt32, down: Bool) {
        self.keysym = keysym
        self.down = down
    }
}

/// PUT /vm/keyboard answer: how many events, from the first, the keyboard took. Fewer than sent
/// means its buffer is full (the guest has not read it yet) or the guest disabled it; send the
/// rest again shortly.
package struct KeyboardReport: Codable, Sendable, Equatable {
    package var accepted: Int

    package init(accepted: Int) { self.accepted = accepted }
}

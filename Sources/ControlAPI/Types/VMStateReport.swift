/// The body of PUT /vm/pause, /vm/resume and /vm/shutdown: the state read back after the call, e.g. `{"state": "paused"}`.
package struct VMStateReport: Codable, Sendable, Equatable {
    /// "running", "paused" or "stopping".
    package var state: String

    /// A report of `state`.
    package init(state: String) { self.state = state }
}

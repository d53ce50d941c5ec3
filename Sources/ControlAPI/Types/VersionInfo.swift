/// The body of GET /version: `{"engram": "0.1.0", "api": 1}`.
package struct VersionInfo: Codable, Sendable, Equatable {
    /// The VMM's version string.
    package var engram: String
    /// The control API's version; raised when a route or body changes incompatibly.
    package var api: Int

    /// A version report.
    package init(engram: String, api: Int) {
        self.engram = engram
        self.api = api
    }
}

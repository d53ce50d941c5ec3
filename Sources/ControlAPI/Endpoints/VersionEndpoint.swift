
/// GET /version: the VMM's version and the API's, so clients can check what they talk to.
package enum VersionEndpoint {
    /// The control API's version; raise it when a route or a body changes incompatibly.
    package static let apiVersion = 1

    /// Adds GET /version to `router`, answering `{"engram": version, "api": apiVersion}`.
    package static func register(in router: inout Router, version: String) {
        let info = VersionInfo(engram: version, api: apiVersion)
        router.add(.version) { _ in try .json(info) }
    }
}

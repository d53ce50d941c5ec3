import LinuxSystem

/// The routes a server answers with, replaceable while it serves (a standby VMM's routes give
/// way to its VM's).
final class RouteTable: Sendable {
    private let router: Locked<Router>

    init(_ router: Router) { self.router = Locked(router) }

    var current: Router { router.withLock { $0 } }

    func replace(with router: Router) { self.router.withLock { $0 = router } }
}

/// One route of the control API: a method and a path. The server registers these and the
/// client sends them, so each is written once.
package struct APIRoute: Hashable, Sendable, CustomStringConvertible {
    package enum Method: String, Sendable {
        case get = "GET", put = "PUT", patch = "PATCH"
    }

    package let method: Method
    package let path: String

    package init(_ method: Method, _ path: String) {
        self.method = method
        self.path = path
    }

    package var description: String { "\(method.rawValue) \(path)" }

    package static let vm = APIRoute(.get, "/vm")
    package static let memory = APIRoute(.get, "/vm/memory")
    package static let memoryStatistics = APIRoute(.get, "/vm/memory/stats")
    package static let vcpus = APIRoute(.get, "/vm/vcpus")
    package static let pause = APIRoute(.put, "/vm/pause")
    package static let resume = APIRoute(.put, "/vm/resume")
    package static let shutdown = APIRoute(.put, "/vm/shutdown")
    package static let snapshot = APIRoute(.put, "/vm/snapshot")
    package static let update = APIRoute(.put, "/vm/update")
    package static let updateStatus = APIRoute(.get, "/vm/update")
    package static let migrate = APIRoute(.put, "/vm/migrate")
    package static let migrationStatus = APIRoute(.get, "/vm/migrate")
    package static let keyboard = APIRoute(.put, "/vm/keyboard")
    package static let version = APIRoute(.get, "/version")
    package static let devices = APIRoute(.get, "/vm/devices")
    package static let disk = APIRoute(.patch, "/vm/disk")
    package static let metrics = APIRoute(.get, "/metrics")
    package static let restore = APIRoute(.put, "/vm/restore")
    package static let fork = APIRoute(.put, "/vm/fork")
    package static let forkReserve = APIRoute(.put, "/vm/fork/reserve")
    package static let balloon = APIRoute(.get, "/vm/balloon")
    package static let balloonUpdate = APIRoute(.put, "/vm/balloon")
    package static let balloonStatistics = APIRoute(.get, "/vm/balloon/statistics")
    package static let balloonStatisticsUpdate = APIRoute(.patch, "/vm/balloon/statistics")

    /// Every route the server answers.
    package static let all: [APIRoute] = [
        vm, memory, memoryStatistics, vcpus, pause, resume, shutdown, snapshot, update, updateStatus, migrate, migrationStatus, keyboard,
        version, devices, disk, metrics, restore, fork, forkReserve, balloon, balloonUpdate, balloonStatistics, balloonStatisticsUpdate,
    ]
}

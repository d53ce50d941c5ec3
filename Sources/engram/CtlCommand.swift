import ArgumentParser
import ControlAPI

/// `engram ctl SOCKET ACTION`: calls a running VM's control API and prints the JSON answer.
///
/// A 2xx answer's body is printed, indented, on standard output; any other answer becomes
/// `engram: <error message> (HTTP <status>)` on standard error and exit status 1, as does a
/// socket nobody answers on. See docs/API.md.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Call a running VM's control API (the --api-socket of engram run).",
        discussion: """
            info      GET /vm            state, vCPUs, uptime, memory size
            memory    GET /vm/memory     guest memory regions and their backings
            pause     PUT /vm/pause      stop the vCPUs (returns once they have stopped)
            resume    PUT /vm/resume     let them run again
            shutdown  PUT /vm/shutdown   end the VM; engram run then exits 0
            version   GET /version       engram's version and the API's
            get PATH  GET PATH           any request, e.g. engram ctl vm.sock get /vm
            put PATH  PUT PATH           with --data JSON as the body
            patch PATH PATCH PATH        with --data JSON as the body (e.g. /vm/disk)
            devices   GET /vm/devices    the virtio devices, their files and counters
            """
    )

    /// What to ask: a named request, or a raw GET/PUT/PATCH.
    enum Action: String, ExpressibleByArgument, CaseIterable {
        case info, memory, pause, resume, shutdown, version, devices, get, put, patch
    }

    @Argument(help: "The VM's control socket (engram run --api-socket PATH).") var socket: String
    @Argument(help: "What to do.") var action: Action
    @Argument(help: "For get, put and patch: the resource, e.g. /vm.") var path: String?
    @Option(help: "For put and patch: the JSON request body.") var data: String?

    func validate() throws {
        switch action {
        case .get, .put, .patch:
            guard let path, path.hasPrefix("/") else {
                throw ValidationError("\(action.rawValue) needs a PATH starting with /, e.g. /vm")
            }
        default:
            guard path == nil else { throw ValidationError("\(action.rawValue) takes no PATH") }
        }
        if data != nil, action != .put, action != .patch { throw ValidationError("--data goes with put and patch only") }
    }

    /// The route `action` stands for (`get`, `put` and `patch` name any path).
    var request: APIRoute {
        switch action {
        case .info: .vm
        case .memory: .memory
        case .version: .version
        case .pause: .pause
        case .resume: .resume
        case .shutdown: .shutdown
        case .devices: .devices
        case .get: APIRoute(.get, path ?? "/")
        case .put: APIRoute(.put, path ?? "/")
        case .patch: APIRoute(.patch, path ?? "/")
        }
    }

    func run() throws {
        APICall.printAnswer(try APICall.send(socket: socket, route: request, body: data.map { Array($0.utf8) }))
    }
}

import ArgumentParser
import ControlAPI
import Foundation

/// `engram ctl SOCKET ...`: calls a running VM's control API and prints the JSON answer.
struct CtlCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctl",
        abstract: "Call a running VM's control API.",
        discussion: """
            Actions: info (GET /vm), memory (GET /vm/memory), pause, resume, shutdown (PUT /vm/...), version,
            or a raw request: get PATH | put PATH [--data JSON].
            """
    )

    @Argument(help: "The VM's --api-socket path.") var socket: String
    @Argument(help: "info, memory, pause, resume, shutdown, version, get or put.") var action: String
    @Argument(help: "The path for get/put, e.g. /vm.") var path: String?
    @Option(help: "JSON body for put.") var data: String?

    func run() throws {
        let (method, resource): (String, String)
        switch action {
        case "info": (method, resource) = ("GET", "/vm")
        case "memory": (method, resource) = ("GET", "/vm/memory")
        case "version": (method, resource) = ("GET", "/version")
        case "pause", "resume", "shutdown": (method, resource) = ("PUT", "/vm/\(action)")
        case "get", "put":
            guard let path else { throw ValidationError("\(action) needs a PATH, e.g. /vm") }
            (method, resource) = (action.uppercased(), path)
        default:
            throw ValidationError("unknown action \(action); expected info, memory, pause, resume, shutdown, version, get or put")
        }
        let reply: (status: Int, body: [UInt8])
        do {
            reply = try ControlClient(socketPath: socket).send(method: method, path: resource, body: data.map { Array($0.utf8) })
        } catch {
            throw CommandFailure(error.description)
        }
        guard (200..<300).contains(reply.status) else {
            let message = (try? JSONDecoder().decode([String: String].self, from: Data(reply.body)))?["error"]
                ?? String(decoding: reply.body, as: UTF8.self)
            throw CommandFailure("\(message) (HTTP \(reply.status))")
        }
        print(Self.pretty(reply.body))
    }

    /// The reply re-indented for people; as received when it is not JSON.
    static func pretty(_ body: [UInt8]) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else {
            return String(decoding: body, as: UTF8.self)
        }
        return String(decoding: data, as: UTF8.self)
    }
}

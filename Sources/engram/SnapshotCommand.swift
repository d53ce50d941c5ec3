import ArgumentParser
import ControlAPI
import FoundationEssentials

/// `engram snapshot SOCKET PATH`: asks a running VM to write a snapshot (PUT /vm/snapshot).
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Pause a running VM, write a snapshot of its memory and state to PATH, and resume it."
    )

    @Argument(help: "The VM's --api-socket path.") var socket: String
    @Argument(help: "The snapshot file to write (mode 0600; replaced atomically).") var path: String
    @Flag(help: "Leave the VM paused afterwards.") var stayPaused = false

    func run() throws {
        let request = SnapshotRequest(path: Self.absolute(path), kind: "full", resume: !stayPaused)
        let body = Array(try JSONEncoder().encode(request))
        let reply: (status: Int, body: [UInt8])
        do {
            reply = try ControlClient(socketPath: socket).send(method: "PUT", path: "/vm/snapshot", body: body)
        } catch {
            throw CommandFailure(error.description)
        }
        guard (200..<300).contains(reply.status) else {
            let message = (try? JSONDecoder().decode([String: String].self, from: Data(reply.body)))?["error"]
                ?? String(decoding: reply.body, as: UTF8.self)
            throw CommandFailure("\(message) (HTTP \(reply.status))")
        }
        print(String(decoding: reply.body, as: UTF8.self))
    }

    /// The VMM may run in another directory: send it an absolute path.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

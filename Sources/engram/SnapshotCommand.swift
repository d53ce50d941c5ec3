import ArgumentParser
import ControlAPI
import FoundationEssentials

/// `engram snapshot SOCKET PATH [--diff]`: asks a running VM to write a snapshot (PUT /vm/snapshot).
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Pause a running VM, write a snapshot of its memory and state to PATH, and resume it.",
        discussion: """
            --diff writes only the pages the guest changed since its previous snapshot (full or diff), \
            which the new file names as its parent; PATH must be in the parent's directory. \
            `engram snapshot-merge` turns such a chain into one full snapshot.
            """
    )

    @Argument(help: "The VM's --api-socket path.") var socket: String
    @Argument(help: "The snapshot file to write (mode 0600; replaced atomically).") var path: String
    @Flag(help: "Write a diff snapshot: only the pages changed since the previous snapshot of this VM.") var diff = false
    @Flag(help: "Leave the VM paused afterwards.") var stayPaused = false

    func run() throws {
        let request = SnapshotRequest(path: Self.absolute(path), kind: diff ? "diff" : "full", resume: !stayPaused)
        let body = Array(try JSONEncoder().encode(request))
        APICall.printAnswer(try APICall.send(socket: socket, method: "PUT", path: "/vm/snapshot", body: body))
    }

    /// The VMM may run in another directory: send it an absolute path.
    static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        return FileManager.default.currentDirectoryPath + "/" + path
    }
}

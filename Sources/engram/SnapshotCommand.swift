import ArgumentParser
import ControlAPI
import FoundationEssentials
import SnapshotFormat
import VMM

/// `engram snapshot SOCKET PATH [--diff]` (take) and `engram snapshot verify FILE`.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Take a snapshot of a running VM (engram snapshot SOCKET PATH), or verify a snapshot file.",
        subcommands: [SnapshotTakeCommand.self, SnapshotVerifyCommand.self],
        defaultSubcommand: SnapshotTakeCommand.self
    )
}

/// `engram snapshot [take] SOCKET PATH [--diff]`: asks a running VM to write a snapshot (PUT /vm/snapshot).
struct SnapshotTakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "take",
        abstract: "Pause a running VM, write a snapshot of its memory and state to PATH, and resume it.",
        discussion: """
            --diff writes only the pages the guest changed since its previous snapshot (full or diff), \
            which the new file names as its parent; PATH must be in the parent's directory. \
            `engram snapshot-merge` turns such a chain into one full snapshot. PATH must be a regular \
            file or nothing; a snapshot that other snapshots name as their parent is replaced only with --force.
            """
    )

    @Argument(help: "The VM's --api-socket path.") var socket: String
    @Argument(help: "The snapshot file to write (mode 0600; an existing regular file is replaced atomically).") var path: String
    @Flag(help: "Replace PATH even if other snapshots in its directory name it as their parent.") var force = false
    @Flag(help: "Write a diff snapshot: only the pages changed since the previous snapshot of this VM.") var diff = false
    @Flag(help: "Leave the VM paused afterwards.") var stayPaused = false
    @OptionGroup var store: ObjectStoreOptions
    @Flag(help: "s3://: create the bucket if it does not exist.") var createBucket = false

    func validate() throws {
        if ObjectStoreOptions.isObjectStore(path), diff {
            throw ValidationError("--diff writes beside a local parent; an s3:// snapshot is full (unchanged chunks are not uploaded again)")
        }
    }

    func run() throws {
        if ObjectStoreOptions.isObjectStore(path) { return try snapshotToObjectStore() }
        let request = SnapshotRequest(path: PathName.absolute(path), kind: diff ? .diff : .full, resume: !stayPaused, force: force ? true : nil)
        APICall.printAnswer(try APICall.send(socket: socket, route: .snapshot, json: request))
    }

    /// s3://: a full snapshot into a private temporary directory, pushed, then removed.
    private func snapshotToObjectStore() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("engram-snapshot-\(UUID().uuidString.prefix(8))").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw CommandFailure("cannot make a temporary directory for the snapshot: \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let local = directory + "/vm.snap"
        let request = SnapshotRequest(path: local, kind: .full, resume: !stayPaused)
        _ = try APICall.send(socket: socket, route: .snapshot, json: request)
        let chain: SnapshotChain
        do { chain = try SnapshotChain(path: local) } catch { throw CommandFailure(error.description) }
        try PushCommand.push(chain, to: path, store: store, createBucket: createBucket)
    }
}

/// `engram snapshot verify FILE`: checks a snapshot file and its chain, prints one line.
struct SnapshotVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check everything the format defines in a snapshot and its chain; print a one-line verdict.",
        discussion: """
            Checks the header, region tables, bitmaps, CRC tables, configuration and state sections, \
            the identities of the chain's parents, and every stored page's CRC32C. Exits 0 when the \
            file is sound, 1 with the first problem otherwise.
            """
    )

    @Argument(help: "The snapshot file (the top of a chain: its parents are checked too).") var file: String

    func run() throws {
        guard FileManager.default.fileExists(atPath: file) else { throw CommandFailure("snapshot \(file): no such file") }
        do {
            print(try SnapshotVerifier.verify(file).line)
        } catch {
            throw CommandFailure("DAMAGED: \(error)")
        }
    }
}

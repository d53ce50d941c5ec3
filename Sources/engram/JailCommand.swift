import ArgumentParser
import Glibc
import LinuxSystem
import SnapshotFormat
import VMM

/// `engram jail ... -- run|restore|receive ARGS`: starts a VMM in a jail of its own (Firecracker's jailer).
struct JailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jail",
        abstract: "Run, restore or receive a VM inside a jail: its own root, namespaces, cgroups and an unprivileged user.",
        discussion: """
            Makes CHROOT_BASE/ID/root holding only the VMM, the libraries it loads, the files the command names (kernel, \
            initrd, disks, snapshot and its parents, secrets and certificates) and the device nodes it needs; enters new \
            mount and PID namespaces (and --netns), pivots into the root, joins the cgroups, drops to UID:GID with no \
            capabilities and no_new_privs, and execs the VMM. Files the command creates (--api-socket, --vsock, \
            --console-log) are made in the root: the caller finds them at CHROOT_BASE/ID/root/NAME. Disks and RAM files \
            are hard-linked and given to UID:GID; files the VM only reads are linked when UID may read but not write \
            them, and copied otherwise. Must be started as root.
            """
    )

    @Option(help: "The jail's name: 1 to 64 letters, digits and hyphens.") var id: String
    @Option(help: "The user the VMM runs as: a number or a user name (not root).") var uid: String
    @Option(help: "The group the VMM runs as: a number or a group name (not root).") var gid: String
    @Option(help: "The directory the jail is made in, as CHROOT_BASE/ID/root.") var chrootBase: String
    @Option(help: "A network namespace to enter, e.g. /run/netns/NAME.") var netns: String?
    @Option(help: "A cgroup limit, CONTROLLER.FILE=VALUE, e.g. pids.max=64 or memory.max=1G (repeat for more; cgroup v1 or v2, whichever holds the controller).")
    var cgroup: [String] = []
    @Flag(help: "Detach: print the jailed VMM's pid and root as JSON and exit; the VMM's output goes to /dev/null.") var daemonize = false
    @Argument(parsing: .postTerminator, help: "-- run|restore|receive and its arguments.") var command: [String] = []

    func run() throws {
        guard let user = UserAccounts.userID(uid) else { throw CommandFailure("engram jail: --uid \(uid): no such user") }
        guard let group = UserAccounts.groupID(gid) else { throw CommandFailure("engram jail: --gid \(gid): no such group") }
        guard getuid() == 0 else { throw CommandFailure("engram jail: must be started as root (it makes namespaces, device nodes and cgroups, then drops to --uid)") }
        // The VMM's own parser checks its arguments now, before the jail is made.
        var snapshot: String? = nil
        switch command.first {
        case "run": _ = try parse(RunCommand.self)
        case "receive": _ = try parse(ReceiveCommand.self)
        case "restore": snapshot = try parse(RestoreCommand.self).snapshot
        default: break  // JailArguments names what is allowed
        }
        var parents: [String] = []
        if let path = snapshot, !path.contains("://") {
            if let chain = try? SnapshotChain(path: path, deferringCRCTables: true) {
                parents = chain.files.dropFirst().map(\.path)
            }
        } else {
            snapshot = nil
        }
        let cgroups = try cgroup.map { setting throws(CommandFailure) -> (file: String, value: String) in
            guard let equals = setting.firstIndex(of: "=") else { throw CommandFailure("engram jail: --cgroup \(setting): expected CONTROLLER.FILE=VALUE, e.g. pids.max=64") }
            return (String(setting[..<equals]), String(setting[setting.index(after: equals)...]))
        }
        let started: Jail.Started
        do {
            let arguments = try JailArguments(command, snapshot: snapshot, parents: parents)
            let request = Jail.Request(
                id: id, user: user, group: group, chrootBase: chrootBase, networkNamespace: netns, cgroups: cgroups, daemonize: daemonize,
                command: arguments, executable: ProcessImage.executablePath(), environment: Self.environment())
            started = try Jail.start(try Jail.plan(request))
        } catch {
            throw CommandFailure(error)
        }
        if daemonize {
            print(#"{"id": "\#(id)", "pid": \#(started.pid), "root": "\#(started.root)"}"#)
            return
        }
        let status = Jail.wait(started)
        if status != 0 { throw ExitCode(status) }
    }

    /// Parses the command after -- with its own type, so a bad argument is refused before anything is made.
    private func parse<Command: ParsableCommand>(_ type: Command.Type) throws -> Command {
        do { return try Command.parse(Array(command.dropFirst())) } catch {
            throw CommandFailure("engram jail: \(command[0]): \(Command.message(for: error))")
        }
    }

    /// What the jailed VMM inherits: HOME as its root, Engram's own variables and the S3 ones
    /// (credentials and endpoint for an s3:// restore; the VMM scrubs the secret once read), nothing else of the host's.
    private static func environment() -> [String] {
        ["HOME=/"] + ProcessEnvironment.variables(prefixedBy: ["ENGRAM_", "AWS_"])
    }
}

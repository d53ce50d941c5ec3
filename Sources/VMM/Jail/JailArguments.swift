import LinuxSystem

/// A VMM command line rewritten for a jail: every file it names is brought to the jail's root
/// under its own name, and the command is given that name instead.
///
/// Files the VMM reads or writes (kernel, initrd, disks, snapshots, secrets) are linked in by
/// `Jail`; files it creates (the API socket, vsock sockets, console logs) are made inside the
/// root, where the caller finds them at ROOT/NAME.
package struct JailArguments: Sendable, Equatable {
    /// What the VMM does with a file an option names.
    package enum Use: Sendable, Equatable {
        /// Reads it: linked in when the jail's user may read it and no more, copied otherwise.
        case read
        /// Writes it (a disk, a RAM file): linked in and given to the jail's user.
        case readWrite
        /// Creates it inside the jail.
        case created
    }

    /// A file the command names, on the host and in the jail.
    package struct File: Sendable, Equatable {
        package let host: String
        /// Its path inside the jail: "/" and the host file's name.
        package let jailPath: String
        package let use: Use
        /// The option (or argument) that named it, for messages.
        package let option: String
    }

    /// The commands a jail runs: the ones that run a VM.
    package static let commands: Set<String> = ["run", "restore", "receive"]

    /// The rewritten command line, its subcommand first.
    package let arguments: [String]
    package let files: [File]

    /// How a path option's value holds its path: the whole value, or one comma-separated field.
    private struct PathOption {
        let use: Use
        var field: Int? = nil
    }

    private static let pathOptions: [String: PathOption] = [
        "--kernel": PathOption(use: .read), "--initrd": PathOption(use: .read), "--ram-file": PathOption(use: .readWrite),
        "--disk": PathOption(use: .readWrite, field: 0),
        "--secret-file": PathOption(use: .read), "--tls-cert": PathOption(use: .read), "--tls-key": PathOption(use: .read), "--tls-ca": PathOption(use: .read),
        "--api-socket": PathOption(use: .created), "--console-log": PathOption(use: .created), "--display": PathOption(use: .created),
        "--chunk-cache": PathOption(use: .created), "--shared-maps": PathOption(use: .created), "--vsock": PathOption(use: .created, field: 1),
    ]

    /// Options that name a host resource a jail cannot hold.
    private static let refusedOptions: [String: String] = [
        "--hugetlbfs": "a hugetlbfs mount is outside the jail's root; back memory with a file or memfd instead",
    ]

    /// Rewrites `command` (e.g. ["restore", "snap", "--api-socket", "/run/vm.sock"]). `snapshot` is
    /// the snapshot file a restore names and `parents` the diffs' parents beside it, all brought in.
    package init(_ command: [String], snapshot: String? = nil, parents: [String] = []) throws(VMMError) {
        guard let subcommand = command.first, Self.commands.contains(subcommand) else {
            throw .invalidRequest("engram jail runs one of \(Self.commands.sorted().joined(separator: ", ")) after --, not \(command.first.map { "\"\($0)\"" } ?? "nothing")")
        }
        var rewritten = [subcommand]
        var files: [File] = []
        var snapshotPending = snapshot
        var index = 1
        func bring(_ value: String, _ option: String, _ use: Use) throws(VMMError) -> String {
            let file = try Self.file(value, option: option, use: use)
            files.append(file)
            return file.jailPath
        }
        while index < command.count {
            let token = command[index]
            index += 1
            let (name, inlineValue) = Self.split(token)
            if let reason = Self.refusedOptions[name] { throw .invalidRequest("engram jail: \(name): \(reason)") }
            guard let option = Self.pathOptions[name] else {
                if token == snapshotPending, let snapshot {
                    snapshotPending = nil
                    rewritten.append(try bring(snapshot, "the snapshot", .read))
                    for parent in parents { _ = try bring(parent, "the snapshot's parent", .read) }
                } else {
                    rewritten.append(token)
                }
                continue
            }
            guard let value = inlineValue ?? (index < command.count ? command[index] : nil) else {
                throw .invalidRequest("engram jail: \(name) needs a value")
            }
            if inlineValue == nil { index += 1 }
            var fields = value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let position = option.field ?? 0
            guard position < fields.count, !fields[position].isEmpty else {
                throw .invalidRequest("engram jail: \(name) \(value): expected a path\(option.field.map { " as field \($0 + 1)" } ?? "")")
            }
            let use = name == "--disk" && fields.dropFirst().contains("readonly") ? .read : option.use
            if option.field == nil {
                rewritten.append(name + "=" + (try bring(value, name, use)))
            } else {
                fields[position] = try bring(fields[position], name, use)
                rewritten.append(name + "=" + fields.joined(separator: ","))
            }
        }
        // Two different files may not take one name in the root.
        var byName: [String: File] = [:]
        for file in files {
            if let other = byName[file.jailPath], other.host != file.host {
                throw .invalidRequest("engram jail: \(other.option) \(other.host) and \(file.option) \(file.host) would both be \(file.jailPath) in the jail; give one another name")
            }
            byName[file.jailPath] = file
        }
        arguments = rewritten
        self.files = files
    }

    /// "--name=value" as ("--name", "value"); any other token as (token, nil).
    private static func split(_ token: String) -> (String, String?) {
        guard token.hasPrefix("--"), let equals = token.firstIndex(of: "=") else { return (token, nil) }
        return (String(token[..<equals]), String(token[token.index(after: equals)...]))
    }

    private static func file(_ value: String, option: String, use: Use) throws(VMMError) -> File {
        let name = FileSystem.fileName(of: value)
        guard !name.isEmpty, name != ".", name != ".." else {
            throw .invalidRequest("engram jail: \(option) \(value): expected a path ending in a file name")
        }
        return File(host: value, jailPath: "/" + name, use: use, option: option)
    }
}

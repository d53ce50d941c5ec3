import FoundationEssentials
import SystemPackage
import NIOCore
import NIOPosix

/// The control socket's place in the file system: clearing a stale one, staging, publishing at mode 0600, removing.
///
/// The socket is bound inside a fresh private directory (mode 0700), set to 0600 there, and only
/// then hard-linked to its path. `link(2)` fails if the path exists, so publishing never replaces a
/// socket another VMM created meanwhile, and no other user can reach the socket at any moment.
enum SocketFile {
    /// The longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
    static let maximumPathBytes = 107

    /// The file's device and inode, so `stop()` removes the path only if it is still this socket.
    struct Identity: Equatable, Sendable {
        let device: UInt64
        let inode: UInt64
    }

    /// Leaves the path free: nothing there is fine, a stale socket is removed, a live socket or another file is refused.
    static func clear(_ path: String, group: any EventLoopGroup) throws(ControlServerError) {
        // lstat: a symlink is not a socket. (FileManager's attributes would also look up the
        // owner's name in /etc/passwd, milliseconds on every VM start.)
        guard let info = try? Stat(FilePath(path), followTargetSymlink: false) else { return }  // nothing there
        guard info.type == .socket else { throw .notASocket(path: path) }
        switch probe(path, group: group) {
        case .listening: throw .socketInUse(path: path)
        case .gone: return
        case .stale:
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw .cannotRemoveStale(path: path, reason: FailureReason.text(error))
            }
        case .unknown(let reason): throw .cannotCheck(path: path, reason: reason)
        }
    }

    /// A new private directory (mode 0700) beside `path` to bind in, and the socket path inside it.
    static func makeStaging(for path: String) throws(ControlServerError) -> (directory: String, socket: String) {
        let parent = path.lastIndex(of: "/").map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? "."
        let name = ".engram-" + String(UInt32.random(in: .min ... .max), radix: 16)
        let directory = parent == "/" ? "/\(name)" : "\(parent)/\(name)"
        let socket = "\(directory)/s"
        guard socket.utf8.count <= maximumPathBytes else {
            throw .pathTooLong(path: path, limitInBytes: maximumPathBytes - (socket.utf8.count - path.utf8.count))
        }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        } catch {
            throw .cannotBind(path: path, reason: "cannot create a private directory beside it: \(FailureReason.text(error))")
        }
        return (directory, socket)
    }

    /// Sets the staged socket to 0600 and links it to `path`; fails, replacing nothing, if `path` exists by now.
    static func publish(_ staged: String, at path: String) throws(ControlServerError) -> Identity? {
        do {
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: staged)
        } catch {
            throw .cannotBind(path: path, reason: "cannot set the socket's mode to 0600: \(FailureReason.text(error))")
        }
        do {
            try FileManager.default.linkItem(atPath: staged, toPath: path)
        } catch let error as CocoaError where error.code == .fileWriteFileExists {
            throw .socketInUse(path: path)
        } catch {
            throw .cannotBind(path: path, reason: FailureReason.text(error))
        }
        return identity(of: path)
    }

    /// The device and inode of the file at `path`, without following a symbolic link.
    static func identity(of path: String) -> Identity? {
        guard let info = try? Stat(FilePath(path), followTargetSymlink: false) else { return nil }
        return Identity(device: UInt64(info.deviceID.rawValue), inode: UInt64(info.inode.rawValue))
    }

    /// Removes `path` if it is still the socket this server published (another VMM may own the path by now).
    static func remove(_ path: String, ifStill identity: Identity?) {
        guard let identity, Self.identity(of: path) == identity else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    private enum ProbeResult: Equatable {
        case listening, stale, gone, unknown(String)
    }

    /// Connects to the socket to learn whether anything accepts on it.
    private static func probe(_ path: String, group: any EventLoopGroup) -> ProbeResult {
        do {
            let channel = try ClientBootstrap(group: group)
                .connectTimeout(.seconds(2))
                .connect(unixDomainSocketPath: path)
                .wait()
            try? channel.close().wait()
            return .listening
        } catch let error as IOError {
            switch error.errnoCode {
            case ECONNREFUSED: return .stale
            case ENOENT: return .gone
            case EAGAIN: return .listening  // its backlog is full: alive, and busy
            default: return .unknown(FailureReason.text(error))
            }
        } catch {
            return .unknown(FailureReason.text(error))
        }
    }
}

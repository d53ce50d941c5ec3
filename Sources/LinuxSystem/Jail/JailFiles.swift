import CLinux
import Glibc

/// Filling a jail's root: directories, files linked or copied in, device nodes, owners.
package enum JailFiles {
    /// Makes `path` a directory with `mode` (not following a symbolic link in its place); an
    /// existing directory is kept.
    package static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
        if unsafe mkdir(path, mode) == 0 { return }
        guard errno == EEXIST, let status = FileStatus(path: path, followingLinks: false), status.kind == .directory else {
            throw .last("mkdir", on: path)
        }
    }

    /// Makes every missing directory on the way to `path`, beneath `base` (which exists).
    package static func makeDirectories(_ path: String, beneath base: String) throws(SystemError) {
        var current = base
        for component in path.dropFirst(base.count).split(separator: "/") {
            current += "/" + component
            try makeDirectory(current)
        }
    }

    /// Hard-links `source` at `destination`; across file systems refused with `reason`.
    package static func hardLink(_ source: String, to destination: String, acrossFileSystems reason: String) throws(SystemError) {
        guard unsafe link(source, destination) == 0 else {
            throw errno == EXDEV ? SystemError(refusing: source, because: reason, .improperLink) : .last("link", on: "\(source) → \(destination)")
        }
    }

    /// Hard-links `source` at `destination`; across file systems, copies it instead (holes kept)
    /// with `copyMode`. True if linked.
    @discardableResult
    package static func linkOrCopy(_ source: String, to destination: String, copyMode: mode_t) throws(SystemError) -> Bool {
        if unsafe link(source, destination) == 0 { return true }
        guard errno == EXDEV else { throw .last("link", on: "\(source) → \(destination)") }
        try copy(source, to: destination, mode: copyMode)
        return false
    }

    /// Copies the regular file `source` to a new file `destination` with `mode`, data ranges only.
    package static func copy(_ source: String, to destination: String, mode: mode_t) throws(SystemError) {
        let input = try OwnedFileDescriptor.open(source, .readOnly)
        let output = try OwnedFileDescriptor.open(destination, .writeOnly, options: [.create, .exclusiveCreate, .noFollow], permissions: .init(rawValue: mode))
        guard let status = FileStatus(descriptor: input.rawValue) else { throw .last("fstat", on: source) }
        guard ftruncate(output.rawValue, off_t(status.sizeInBytes)) == 0 else { throw .last("ftruncate", on: destination) }
        for range in try DataExtents.ranges(of: input.rawValue, from: 0, to: status.sizeInBytes, path: source) {
            var from = Int64(range.lowerBound), to = Int64(range.lowerBound)
            var left = Int(range.count)
            while left > 0 {
                let copied = unsafe clinux_copy_file_range(input.rawValue, &from, output.rawValue, &to, left)
                guard copied > 0 else {
                    if copied < 0 && errno == EINTR { continue }
                    throw copied == 0 ? SystemError("copy_file_range", on: source, .ioError) : .last("copy_file_range", on: "\(source) → \(destination)")
                }
                left -= Int(copied)
            }
        }
    }

    /// Makes a character device node at `path` for the device `like` stands for, owned by
    /// `owner`:`group` with `mode`.
    package static func makeDeviceNode(_ path: String, like host: String, owner: UInt32, group: UInt32, mode: mode_t) throws(SystemError) {
        guard let status = FileStatus(path: host), status.kind == .characterDevice else {
            throw SystemError(refusing: path, because: "\(host) is not a character device here", .operationNotSupportedByDevice)
        }
        guard unsafe mknod(path, S_IFCHR | mode, dev_t(status.deviceNumber)) == 0 || errno == EEXIST else { throw .last("mknod", on: path) }
        try changeOwner(path, to: owner, group: group)
        guard unsafe chmod(path, mode) == 0 else { throw .last("chmod", on: path) }
    }

    /// Gives `path` (not following a symbolic link there) to `owner`:`group`.
    package static func changeOwner(_ path: String, to owner: UInt32, group: UInt32) throws(SystemError) {
        guard unsafe lchown(path, owner, group) == 0 else { throw .last("chown", on: path) }
    }

    /// True if the file system holding `path` honours device nodes (not mounted nodev).
    package static func allowsDeviceNodes(_ path: String) -> Bool {
        var info = statvfs()
        guard unsafe statvfs(path, &info) == 0 else { return false }
        let noDevices: UInt = 4  // ST_NODEV
        return info.f_flag & noDevices == 0
    }

}

import Glibc

/// A control group made for one jailed process, under this process's own group in the
/// hierarchy that holds a controller: cgroup v1 (a hierarchy per controller) or v2 (one unified
/// hierarchy), whichever the host mounts the controller in.
package struct ControlGroup: Sendable, Equatable {
    /// Where the controller's hierarchy is, and this process's group in it.
    package struct Hierarchy: Sendable, Equatable {
        package let mountPoint: String
        /// This process's group, as a directory under the mount point.
        package let ownGroup: String
        package let unified: Bool
    }

    /// The group's directory.
    package let directory: String
    package let hierarchy: Hierarchy

    /// The hierarchy `controller` (e.g. "memory", "pids", "cpu") is mounted in; nil if the host has none.
    package static func hierarchy(of controller: String) throws(SystemError) -> Hierarchy? {
        let mounts = String(decoding: try OwnedFileDescriptor.readToEnd("/proc/self/mountinfo"), as: UTF8.self)
        let memberships = String(decoding: try OwnedFileDescriptor.readToEnd("/proc/self/cgroup"), as: UTF8.self)
        for line in mounts.split(separator: "\n") {
            // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - TYPE SOURCE SUPEROPTIONS"
            let halves = line.split(separator: " - ", maxSplits: 1).map { $0.split(separator: " ").map(String.init) }
            guard halves.count == 2, halves[0].count >= 5, halves[1].count >= 3 else { continue }
            let (root, mountPoint, type) = (halves[0][3], unescape(halves[0][4]), halves[1][0])
            if type == "cgroup", halves[1][2].split(separator: ",").contains(Substring(controller)) {
                let own = memberships.split(separator: "\n").compactMap { entry -> String? in
                    let fields = entry.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                    guard fields.count == 3, fields[1].split(separator: ",").contains(Substring(controller)) else { return nil }
                    return String(fields[2])
                }.first
                guard let own else { continue }
                return Hierarchy(mountPoint: mountPoint, ownGroup: relative(own, to: root), unified: false)
            }
            if type == "cgroup2" {
                let available = (try? OwnedFileDescriptor.readToEnd(mountPoint + "/cgroup.controllers")).map { String(decoding: $0, as: UTF8.self) } ?? ""
                guard available.split(whereSeparator: \.isWhitespace).contains(Substring(controller)) else { continue }
                let own = memberships.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) } ?? "/"
                return Hierarchy(mountPoint: mountPoint, ownGroup: relative(own, to: root), unified: true)
            }
        }
        return nil
    }

    /// Makes (or reuses) the group `path` (e.g. "engram/ID") under this process's own group in
    /// `hierarchy`, ready for `controller`'s files: v2 enables the controller down to it, v1's
    /// cpuset copies its parent's CPUs and memory nodes (a cpuset without them takes no process).
    package static func create(_ path: String, in hierarchy: Hierarchy, for controller: String) throws(SystemError) -> ControlGroup {
        var directory = hierarchy.mountPoint + (hierarchy.ownGroup == "/" ? "" : hierarchy.ownGroup)
        for component in path.split(separator: "/") {
            if hierarchy.unified {
                try write("+" + controller, to: directory + "/cgroup.subtree_control")
            }
            let parent = directory
            directory += "/" + component
            guard unsafe mkdir(directory, 0o755) == 0 || errno == EEXIST else { throw .last("mkdir", on: directory) }
            if !hierarchy.unified && controller == "cpuset" {
                for file in ["cpuset.cpus", "cpuset.mems"] where (try? OwnedFileDescriptor.readToEnd(directory + "/" + file))?.allSatisfy({ $0 == 0x0a }) ?? false {
                    try write(String(decoding: try OwnedFileDescriptor.readToEnd(parent + "/" + file), as: UTF8.self), to: directory + "/" + file)
                }
            }
        }
        return ControlGroup(directory: directory, hierarchy: hierarchy)
    }

    /// Sets `file` (e.g. "pids.max") to `value`.
    package func set(_ file: String, to value: String) throws(SystemError) {
        try Self.write(value, to: directory + "/" + file)
    }

    /// The value of `file`, without its line end.
    package func value(of file: String) throws(SystemError) -> String {
        String(decoding: try OwnedFileDescriptor.readToEnd(directory + "/" + file), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
    }

    /// cgroup.procs opened for writing: a process writing "0" to it joins the group.
    package func openProcs() throws(SystemError) -> OwnedFileDescriptor {
        try OwnedFileDescriptor.open(directory + "/cgroup.procs", .writeOnly)
    }

    /// Removes the group once no process is in it; false if it could not.
    @discardableResult
    package func remove() -> Bool { unsafe rmdir(directory) == 0 }

    private static func write(_ value: String, to path: String) throws(SystemError) {
        let file = try OwnedFileDescriptor.open(path, .writeOnly)
        try file.writeAll(Array(value.utf8), subject: path)
    }

    /// `path` seen from a mount whose root is `root` (a group inside a cgroup namespace's view).
    private static func relative(_ path: String, to root: String) -> String {
        guard root != "/", path.hasPrefix(root) else { return path }
        let rest = String(path.dropFirst(root.count))
        return rest.isEmpty ? "/" : rest
    }

    /// mountinfo escapes spaces, tabs, newlines and backslashes as octal.
    private static func unescape(_ field: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(field.utf8)[...]
        while let byte = input.popFirst() {
            if byte == 0x5c, input.count >= 3, let value = UInt8(String(decoding: input.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                input = input.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

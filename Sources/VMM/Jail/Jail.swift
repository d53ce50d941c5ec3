import Glibc
import LinuxSystem

/// `engram jail`, in Firecracker's jailer's mould: a root of the VM's own (DIR/ID/root) holding
/// only the VMM, the libraries it loads, the files its command names and the device nodes it
/// needs; new mount and PID namespaces, an optional network namespace, cgroup limits, and a user
/// without capabilities. Everything that can be checked is checked by `plan` before anything is
/// made, so a bad argument leaves nothing behind.
package enum Jail {
    /// What the caller asks for.
    package struct Request: Sendable {
        package var id: String
        package var user: UInt32
        package var group: UInt32
        package var chrootBase: String
        package var networkNamespace: String?
        /// cgroup files and values, e.g. ("pids.max", "64").
        package var cgroups: [(file: String, value: String)]
        package var daemonize: Bool
        package var command: JailArguments
        /// The VMM's binary on the host.
        package var executable: String
        /// Environment variables passed to the VMM ("NAME=VALUE").
        package var environment: [String]

        package init(id: String, user: UInt32, group: UInt32, chrootBase: String, networkNamespace: String?, cgroups: [(file: String, value: String)],
                     daemonize: Bool, command: JailArguments, executable: String, environment: [String]) {
            self.id = id
            self.user = user
            self.group = group
            self.chrootBase = chrootBase
            self.networkNamespace = networkNamespace
            self.cgroups = cgroups
            self.daemonize = daemonize
            self.command = command
            self.executable = executable
            self.environment = environment
        }
    }

    /// A checked request: where everything comes from and goes.
    package struct Plan: Sendable {
        package let request: Request
        /// DIR/ID and DIR/ID/root.
        package let directory: String
        package let root: String
        /// The VMM and the shared objects it loads: the host file, and its path in the root (the
        /// path the loader asks for, e.g. /lib64/ld-linux-x86-64.so.2, though on the host it is a link).
        let runtime: [(source: String, path: String)]
        /// Host device nodes the VMM opens.
        let devices: [String]
        /// Each cgroup setting with the hierarchy that holds its controller.
        let cgroups: [(file: String, value: String, controller: String, hierarchy: ControlGroup.Hierarchy)]
        /// Read and read-write inputs, resolved to absolute host paths.
        let inputs: [(file: JailArguments.File, host: String)]
    }

    /// A started jail.
    package struct Started: Sendable {
        /// The VMM's pid as the host sees it (it is 1 in its own PID namespace).
        package let pid: pid_t
        package let root: String
        package let groups: [ControlGroup]
    }

    /// Checks everything it can without making anything.
    package static func plan(_ request: Request) throws(VMMError) -> Plan {
        guard (1...64).contains(request.id.utf8.count), request.id.utf8.allSatisfy({ $0 == 0x2d || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }) else {
            throw .invalidRequest("engram jail: --id \(request.id): expected 1 to 64 letters, digits and hyphens")
        }
        guard request.user != 0, request.group != 0 else {
            throw .invalidRequest("engram jail: --uid and --gid must not be root (0): the jail exists to drop root's rights")
        }
        // To setresuid and chown, (uid_t)-1 means "leave as it is": the VMM would stay root.
        guard request.user != UInt32.max, request.group != UInt32.max else {
            throw .invalidRequest("engram jail: --uid and --gid must be below 4294967295, which the kernel reads as \"unchanged\" (the VMM would keep root's rights)")
        }
        guard let base = FileSystem.resolvedPath(request.chrootBase), FileStatus(path: base)?.kind == .directory else {
            throw .invalidRequest("engram jail: --chroot-base \(request.chrootBase): expected an existing directory")
        }
        guard JailFiles.allowsDeviceNodes(base) else {
            throw .invalidRequest("engram jail: --chroot-base \(base) is on a file system mounted nodev, where the jail's /dev/kvm would not open; choose another")
        }
        let directory = base + "/" + request.id, root = directory + "/root"
        for (path, what) in [(directory, "the jail's directory"), (root, "the jail's root")] {
            guard let status = FileStatus(path: path, followingLinks: false) else { continue }
            guard status.kind == .directory else { throw .invalidRequest("engram jail: \(what) \(path) exists and is not a directory") }
            let allowed: Set<UInt32> = path == root ? [request.user] : [0, request.user]
            guard allowed.contains(status.owner) else {
                throw .invalidRequest("engram jail: \(what) \(path) exists and belongs to uid \(status.owner), not \(path == root ? "the jail's user \(request.user)" : "root or the jail's user"); remove it or choose another --id")
            }
            if path == root, let entries = FileSystem.entries(of: root), !entries.isEmpty {
                throw .invalidRequest("engram jail: the jail's root \(root) is not empty; a jail's root is made afresh (remove it or choose another --id)")
            }
        }
        var inputs: [(file: JailArguments.File, host: String)] = []
        for file in request.command.files where file.use != .created {
            guard let host = FileSystem.resolvedPath(file.host), FileStatus(path: host)?.kind == .regular else {
                throw .invalidRequest("engram jail: \(file.option) \(file.host): expected an existing regular file")
            }
            inputs.append((file, host))
        }
        guard let executable = FileSystem.resolvedPath(request.executable) else { throw .invalidRequest("engram jail: cannot find the VMM at \(request.executable)") }
        var runtime = [(source: executable, path: executable)]
        let libraries: [String]
        do { libraries = try SharedLibraries.of(executable) } catch { throw .failed("engram jail: \(error)") }
        for library in libraries {
            guard let source = FileSystem.resolvedPath(library) else { throw .invalidRequest("engram jail: the VMM's library \(library) is missing") }
            runtime.append((source, library))
        }
        let reserved = Set(["proc", "dev"] + runtime.compactMap { $0.path.split(separator: "/").first.map(String.init) })
        if let clash = request.command.files.first(where: { reserved.contains(String($0.jailPath.dropFirst())) }) {
            throw .invalidRequest("engram jail: \(clash.option) \(clash.host) would be \(clash.jailPath) in the jail, a name the jail itself uses; give it another name")
        }
        var devices = ["/dev/kvm", "/dev/null", "/dev/urandom"]
        if request.command.arguments.contains(where: { $0 == "--net" || $0.hasPrefix("--net=") }) { devices.append("/dev/net/tun") }
        if request.command.arguments.first != "run", FileStatus(path: "/dev/userfaultfd")?.kind == .characterDevice { devices.append("/dev/userfaultfd") }
        for device in devices where FileStatus(path: device)?.kind != .characterDevice {
            throw .invalidRequest("engram jail: \(device) is missing on this host, and the VMM needs it")
        }
        if let namespace = request.networkNamespace, FileStatus(path: namespace) == nil {
            throw .invalidRequest("engram jail: --netns \(namespace): no such network namespace file (expected e.g. /run/netns/NAME)")
        }
        var cgroups: [(file: String, value: String, controller: String, hierarchy: ControlGroup.Hierarchy)] = []
        for (file, value) in request.cgroups {
            let parts = file.split(separator: ".", maxSplits: 1)
            // Letters of both cases: hugetlb's files name their page size ("hugetlb.2MB.max").
            guard parts.count == 2, file.utf8.allSatisfy({ $0 == 0x2e || $0 == 0x5f || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }),
                  !value.contains("\n") else {
                throw .invalidRequest("engram jail: --cgroup \(file)=\(value): expected CONTROLLER.FILE=VALUE, e.g. pids.max=64")
            }
            let controller = String(parts[0])
            let hierarchy: ControlGroup.Hierarchy?
            do { hierarchy = try ControlGroup.hierarchy(of: controller) } catch { throw .failed("engram jail: \(error)") }
            guard let hierarchy else { throw .invalidRequest("engram jail: --cgroup \(file): this host mounts no \(controller) controller") }
            cgroups.append((file, value, controller, hierarchy))
        }
        return Plan(request: request, directory: directory, root: root, runtime: runtime, devices: devices, cgroups: cgroups, inputs: inputs)
    }

    /// Makes the root and its contents and the cgroups, then starts the VMM in the jail.
    package static func start(_ plan: Plan) throws(VMMError) -> Started {
        let request = plan.request
        var groups: [ControlGroup] = []
        do {
            try JailFiles.makeDirectory(plan.directory)
            try JailFiles.makeDirectory(plan.root, mode: 0o700)
            try JailFiles.changeOwner(plan.root, to: request.user, group: request.group)
            // The VMM and its libraries at their host paths, root's and read-only to the jail.
            for (source, path) in plan.runtime {
                let destination = plan.root + path
                try JailFiles.makeDirectories(FileSystem.directory(of: destination), beneath: plan.root)
                try JailFiles.linkOrCopy(source, to: destination, copyMode: 0o755)
            }
            for (file, host) in plan.inputs { try bring(file, from: host, into: plan.root, request) }
            try JailFiles.makeDirectory(plan.root + "/proc", mode: 0o555)
            try JailFiles.makeDirectory(plan.root + "/dev")
            for device in plan.devices {
                let destination = plan.root + device
                try JailFiles.makeDirectories(FileSystem.directory(of: destination), beneath: plan.root)
                let shared = device == "/dev/null" || device == "/dev/urandom"
                try JailFiles.makeDeviceNode(destination, like: device, owner: shared ? 0 : request.user, group: shared ? 0 : request.group, mode: shared ? 0o666 : 0o600)
            }
            for setting in plan.cgroups {
                let group = try ControlGroup.create("engram/" + request.id, in: setting.hierarchy, for: setting.controller)
                try group.set(setting.file, to: setting.value)
                if !groups.contains(group) { groups.append(group) }
            }
        } catch {
            throw .failed("engram jail: cannot prepare the jail: \(error)")
        }
        var configuration = JailedProcess.Configuration(
            root: plan.root, executable: plan.runtime[0].path, arguments: ["engram"] + request.command.arguments,
            environment: request.environment, user: request.user, group: request.group)
        configuration.daemon = request.daemonize
        let procs: [OwnedFileDescriptor]
        var namespace: OwnedFileDescriptor? = nil
        do {
            procs = try groups.map { group throws(SystemError) in try group.openProcs() }
            if let path = request.networkNamespace { namespace = try OwnedFileDescriptor.open(path, .readOnly) }
        } catch {
            throw .failed("engram jail: \(error)")
        }
        configuration.cgroupProcs = procs.map(\.rawValue)
        configuration.networkNamespace = namespace?.rawValue
        do {
            let pid = try JailedProcess.start(configuration)
            return Started(pid: pid, root: plan.root, groups: groups)
        } catch {
            for group in groups { group.remove() }
            throw .failed("engram jail: \(error)")
        }
    }

    /// Brings one input into the root: a file the VMM writes is linked and given to the jail's
    /// user; one it only reads is linked when that user may read it and not write it, else
    /// copied for the user alone (a secret only its owner reads; a snapshot written 0600 by root).
    private static func bring(_ file: JailArguments.File, from host: String, into root: String, _ request: Request) throws(SystemError) {
        let destination = root + file.jailPath
        guard FileStatus(path: destination, followingLinks: false) == nil else { return }  // named twice
        switch file.use {
        case .readWrite:
            try JailFiles.hardLink(host, to: destination, acrossFileSystems: "it is written by the VM, so it must be on the same file system as the jail to be linked in")
            try JailFiles.changeOwner(destination, to: request.user, group: request.group)
        case .read:
            guard let status = FileStatus(path: host) else { throw .last("stat", on: host) }
            let readable = status.permissions & 0o004 != 0 || (status.group == request.group && status.permissions & 0o040 != 0) || status.owner == request.user
            let writable = status.owner == request.user || status.permissions & 0o002 != 0 || (status.group == request.group && status.permissions & 0o020 != 0)
            let secret = file.option == "--secret-file" || file.option == "--tls-key"
            if readable && !writable && !secret {
                try JailFiles.linkOrCopy(host, to: destination, copyMode: 0o444)
            } else {
                try JailFiles.copy(host, to: destination, mode: 0o600)
                try JailFiles.changeOwner(destination, to: request.user, group: request.group)
            }
        case .created:
            return
        }
    }

    /// Waits for a jail's VMM to end, removes its cgroups, and returns its exit status.
    package static func wait(_ started: Started) -> Int32 {
        let status = JailedProcess.wait(started.pid)
        for group in started.groups { group.remove() }
        return status
    }
}

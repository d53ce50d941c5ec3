import Foundation

/// A QMP client on QEMU's unix socket: one command at a time, replies matched by id, events kept.
public final class QMPConnection: @unchecked Sendable {
    private let descriptor: Int32
    private let lock = NSLock()
    private var buffer: [UInt8] = []
    private var nextID = 1
    /// Asynchronous events (STOP, RESUME, DUMP_COMPLETED, ...) seen so far, oldest first.
    public private(set) var events: [[String: Any]] = []

    /// Connects (retrying while QEMU starts and `isAlive`), reads the greeting and negotiates capabilities.
    public init(socketPath: String, timeout: TimeInterval = 30, isAlive: () -> Bool = { true }) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var connected: Int32 = -1
        while connected < 0 {
            connected = Self.connect(socketPath)
            if connected >= 0 { break }
            guard isAlive() else { throw QEMULinuxGuest.Failure("QEMU exited before its QMP socket \(socketPath) accepted a connection") }
            guard Date() < deadline else { throw QEMULinuxGuest.Failure("cannot connect to QMP socket \(socketPath) within \(Int(timeout)) s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        descriptor = connected
        let greeting = try readMessage(until: deadline)
        guard greeting["QMP"] != nil else { throw QEMULinuxGuest.Failure("no QMP greeting: \(greeting)") }
        _ = try execute("qmp_capabilities")
    }

    deinit { close(descriptor) }

    /// Runs `command`; returns its "return" value, or throws its "error" (class and description).
    @discardableResult
    public func execute(_ command: String, arguments: [String: Any] = [:], timeout: TimeInterval = 60) throws -> Any {
        lock.lock(); defer { lock.unlock() }
        let id = nextID
        nextID += 1
        var message: [String: Any] = ["execute": command, "id": id]
        if !arguments.isEmpty { message["arguments"] = arguments }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(UInt8(ascii: "\n"))
        try writeAll(bytes, command: command)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let reply = try readMessage(until: deadline, command: command)
            if reply["event"] != nil { events.append(reply); continue }
            guard reply["id"] as? Int == id else { continue }
            if let error = reply["error"] as? [String: Any] {
                throw QEMULinuxGuest.Failure("QMP \(command) failed: \(error["class"] ?? "") \(error["desc"] ?? "")")
            }
            return reply["return"] ?? [:]
        }
    }

    private func writeAll(_ bytes: [UInt8], command: String) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw QEMULinuxGuest.Failure("QMP \(command): write failed: \(String(cString: strerror(errno)))") }
            sent += count
        }
    }

    /// The next JSON object QEMU sends (one a line).
    private func readMessage(until deadline: Date, command: String = "greeting") throws -> [String: Any] {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
                guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
                    throw QEMULinuxGuest.Failure("QMP sent something that is not an object: \(String(decoding: line, as: UTF8.self))")
                }
                return object
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw QEMULinuxGuest.Failure("QMP \(command): no reply in time") }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw QEMULinuxGuest.Failure("QMP \(command): QEMU closed the connection") }
            buffer.append(contentsOf: chunk[..<count])
        }
    }

    private static func connect(_ path: String) -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(descriptor); return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: pathBytes) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if result != 0 { close(descriptor); return -1 }
        return descriptor
    }
}

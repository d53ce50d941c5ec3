import FoundationEssentials
import LinuxSystem

/// A blocking HTTP client for a VM's control socket, for `engram ctl` and tests.
///
/// Each `send` opens a connection (LinuxSystem's `StreamSocket`, no event loop), sends one
/// request with `Connection: close`, and reads the whole answer: the status line, the headers
/// and a body of `Content-Length` bytes, as the control server writes them.
package struct ControlClient: Sendable {
    /// The largest answer body accepted.
    package static let maximumReplyBytes = 16 << 20
    /// The largest answer head (status line and headers) accepted.
    static let maximumHeadBytes = 64 << 10

    /// The control socket of the VM to talk to.
    package let socketPath: String
    /// How long the VM may be silent before the request counts as unanswered (pause waits for the vCPUs).
    package let timeoutSeconds: Int64

    /// A client for the VM serving `socketPath`.
    package init(socketPath: String, timeoutSeconds: Int64 = 60) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends `route` with an optional JSON `body` and returns the answer's status and body, whatever the status.
    package func send(route: APIRoute, body: [UInt8]? = nil) throws(ControlClientError) -> (status: Int, body: [UInt8]) {
        try send(method: route.method.rawValue, path: route.path, body: body)
    }

    /// Sends `value` as the JSON body of `route`, with the API's key conventions.
    package func send<Body: Encodable>(route: APIRoute, json value: Body) throws(ControlClientError) -> (status: Int, body: [UInt8]) {
        let body: [UInt8]
        do { body = Array(try JSONCoding.makeEncoder().encode(value)) } catch { throw .malformedRequest(reason: "\(error)") }
        return try send(route: route, body: body)
    }

    /// Sends `method` `path` with an optional JSON `body` and returns the answer's status and body, whatever the status.
    package func send(method: String, path: String, body: [UInt8]? = nil) throws(ControlClientError) -> (status: Int, body: [UInt8]) {
        let socket = try connect()
        defer { socket.shutdown() }
        socket.setReceiveTimeout(milliseconds: Int(timeoutSeconds) * 1000)
        socket.setSendTimeout(milliseconds: Int(timeoutSeconds) * 1000)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
        if let body {
            head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method != "GET" {
            head += "Content-Length: 0\r\n"
        }
        head += "Connection: close\r\n\r\n"
        do {
            try socket.send(Array(head.utf8) + (body ?? []))
        } catch .failed(_, _, .brokenPipe), .failed(_, _, .connectionReset) {
            // A server may answer and close before reading the whole request (a refusal, or a
            // listener that is not a VM): its answer is still queued on this socket.
        } catch {
            throw failure(error)
        }
        return try readReply(from: socket)
    }

    private func connect() throws(ControlClientError) -> StreamSocket {
        do { return try StreamSocket.connect(unixPath: socketPath) } catch {
            guard case .failed(_, _, let errno) = error else { throw .connectionFailed(path: socketPath, reason: "\(error)") }
            switch errno {
            case .noSuchFileOrDirectory: throw .socketMissing(path: socketPath)
            case .connectionRefused, .notSocket: throw .connectionRefused(path: socketPath)
            case .permissionDenied, .notPermitted: throw .permissionDenied(path: socketPath)
            default: throw .connectionFailed(path: socketPath, reason: "\(errno)")
            }
        }
    }

    /// Reads the answer's head, then its body.
    private func readReply(from socket: StreamSocket) throws(ControlClientError) -> (status: Int, body: [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var received: [UInt8] = []
        var headEnd: Int?
        while headEnd == nil {
            guard received.count <= Self.maximumHeadBytes else {
                throw .malformedReply(path: socketPath, reason: "the head is longer than \(Self.maximumHeadBytes) bytes")
            }
            received += try receive(from: socket, into: &buffer)
            headEnd = Self.endOfHead(in: received)
        }
        let (status, length) = try parseHead(received[..<headEnd!])
        var body = Array(received[(headEnd! + 4)...])
        guard let length else {
            // No length: the body runs to the end of the connection.
            while true {
                do {
                    let count = try socket.receive(into: &buffer, at: 0, count: buffer.count)
                    body += buffer[0..<count]
                } catch .closed { return (status, body) } catch { throw failure(error) }
                guard body.count <= Self.maximumReplyBytes else { throw tooLarge() }
            }
        }
        guard length <= Self.maximumReplyBytes else { throw tooLarge() }
        while body.count < length { body += try receive(from: socket, into: &buffer) }
        return (status, Array(body.prefix(length)))
    }

    private func receive(from socket: StreamSocket, into buffer: inout [UInt8]) throws(ControlClientError) -> ArraySlice<UInt8> {
        do {
            let count = try socket.receive(into: &buffer, at: 0, count: buffer.count)
            return buffer[0..<count]
        } catch { throw failure(error) }
    }

    /// The status code and Content-Length of a head (without its blank line).
    private func parseHead(_ head: ArraySlice<UInt8>) throws(ControlClientError) -> (Int, Int?) {
        let lines = String(decoding: head, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.first?.split(separator: " ", maxSplits: 2) ?? []
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]), (100...599).contains(status) else {
            throw .malformedReply(path: socketPath, reason: "the status line is \"\(lines.first?.prefix(80) ?? "")\"")
        }
        var length: Int?
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = Self.trimmed(line[..<colon]).lowercased()
            let value = Self.trimmed(line[line.index(after: colon)...])
            if name == "content-length" {
                guard let parsed = Int(value), parsed >= 0 else {
                    throw .malformedReply(path: socketPath, reason: "Content-Length is \"\(value.prefix(40))\"")
                }
                length = parsed
            } else if name == "transfer-encoding", value.lowercased() != "identity" {
                throw .malformedReply(path: socketPath, reason: "Transfer-Encoding \(value.prefix(40)) is not supported")
            }
        }
        return (status, length)
    }

    /// `text` without leading and trailing spaces and tabs.
    private static func trimmed(_ text: Substring) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    /// The index of the blank line ending the head ("\r\n\r\n"), if it has arrived.
    private static func endOfHead(in bytes: [UInt8]) -> Int? {
        guard bytes.count >= 4 else { return nil }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func tooLarge() -> ControlClientError {
        .malformedReply(path: socketPath, reason: "the body is larger than \(Self.maximumReplyBytes) bytes")
    }

    private func failure(_ error: SystemError) -> ControlClientError {
        switch error {
        case .closed: .closedBeforeReply(path: socketPath)
        case .failed(_, _, .connectionReset), .failed(_, _, .brokenPipe): .closedBeforeReply(path: socketPath)
        case _ where error.isTimeout: .timedOut(path: socketPath, seconds: timeoutSeconds)
        default: .connectionFailed(path: socketPath, reason: "\(error)")
        }
    }
}

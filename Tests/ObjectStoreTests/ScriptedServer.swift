import Foundation
import LinuxSystem

/// A loopback HTTP server that answers each request with the next reply of a script, one
/// connection per request, and records what it was sent: for the client's handling of replies
/// a real store gives only by chance (503 SlowDown, a 200 that ignores Range).
final class ScriptedServer: @unchecked Sendable {
    struct Reply: Sendable {
        var status: Int
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        /// Sends the body a byte at a time this far apart (a store that trickles).
        var byteDelayMilliseconds = 0

        /// An S3 error reply with its XML body.
        static func error(_ status: Int, _ code: String, _ message: String = "scripted") -> Reply {
            Reply(status: status, headers: [("Content-Type", "application/xml")],
                  body: Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>".utf8))
        }
    }

    /// What one request looked like: its request line and headers (names lower-cased).
    struct Received: Sendable {
        var requestLine: String
        var headers: [String: String]
    }

    let port: Int
    private let listener: Int32
    private let state: State
    private let thread: Thread
    /// Signalled when the serving thread has returned: only then may the listener's descriptor be
    /// closed. Closed earlier, its number could go to another test's listener while this thread
    /// was still answering a connection, and its next accept would take that test's connections
    /// and answer them from this script (a 200 left over here met a test expecting a 416).
    private let finished = DispatchSemaphore(value: 0)
    private let stopped = Locked(false)

    /// The script and the log, shared with the serving thread.
    private final class State: Sendable {
        let script: Locked<[Reply]>
        let log = Locked<[Received]>([])
        init(_ replies: [Reply]) { script = Locked(replies) }
    }

    init(_ replies: [Reply]) throws {
        state = State(replies)
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let descriptor = listener
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard ok else { throw CocoaError(.fileWriteUnknown) }
        port = Int(UInt16(bigEndian: address.sin_port))
        let state = self.state
        let finished = self.finished
        thread = Thread {
            defer { finished.signal() }
            while true {
                let connection = accept(descriptor, nil, nil)
                guard connection >= 0 else { return }  // the listener was shut down
                if let received = Self.readRequest(connection) {
                    state.log.withLock { $0.append(received) }
                    let reply = state.script.withLock { $0.isEmpty ? Reply.error(500, "ScriptExhausted") : $0.removeFirst() }
                    Self.transmit(reply, to: connection, headOnly: received.requestLine.hasPrefix("HEAD "))
                }
                close(connection)
            }
        }
        thread.start()
    }

    deinit { stop() }

    /// Ends the serving thread, then closes the listener; later calls do nothing.
    func stop() {
        guard stopped.withLock({ (done: inout Bool) -> Bool in defer { done = true }; return !done }) else { return }
        shutdown(listener, Int32(SHUT_RDWR))  // wakes the thread's accept with an error
        finished.wait()
        close(listener)
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }
    var received: [Received] { state.log.withLock { $0 } }

    private static func readRequest(_ connection: Int32) -> Received? {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var bodyLength = 0
        while true {
            if let end = headerEnd, data.count >= end + bodyLength { break }
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            data.append(contentsOf: chunk[..<count])
            if headerEnd == nil, let range = String(decoding: data, as: UTF8.self).range(of: "\r\n\r\n") {
                let head = String(decoding: data, as: UTF8.self)[..<range.lowerBound]
                headerEnd = head.utf8.count + 4
                for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    bodyLength = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
        }
        let head = String(decoding: data[..<(headerEnd! - 4)], as: UTF8.self)
        let lines = head.split(separator: "\r\n").map(String.init)
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Received(requestLine: lines.first ?? "", headers: headers)
    }

    private static func transmit(_ reply: Reply, to connection: Int32, headOnly: Bool) {
        var head = "HTTP/1.1 \(reply.status) Scripted\r\nConnection: close\r\nContent-Length: \(reply.body.count)\r\n"
        for (name, value) in reply.headers { head += "\(name): \(value)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (headOnly ? [] : reply.body)
        var sent = 0
        while sent < bytes.count {
            let slow = reply.byteDelayMilliseconds > 0, trickle = slow && sent >= head.utf8.count
            if trickle { usleep(UInt32(reply.byteDelayMilliseconds) * 1000) }
            let end = trickle ? sent + 1 : slow ? head.utf8.count : bytes.count
            let count = bytes[sent..<end].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { return }  // the client went away
            sent += count
        }
    }
}

import ControlAPI
import Foundation
import Testing
import TestSupport

/// Bytes that are not HTTP, on a real socket: a JSON 400, that connection closed, the server unharmed.
@Suite final class MalformedRequestTests {
    private let directory = TemporaryDirectory()
    private let fake = FakeVMControl()
    private let path: String
    private let server: ControlServer

    init() throws {
        path = directory.path("m.sock")
        server = ControlServer(socketPath: path, control: fake, version: "1")
        try server.start()
    }

    deinit { server.stop() }

    /// The status line, the headers by lower-cased name, and the body of one raw HTTP answer.
    private func parse(_ reply: String) throws -> (statusLine: String, headers: [String: String], body: String) {
        let parts = reply.components(separatedBy: "\r\n\r\n")
        let head = try #require(parts.first).components(separatedBy: "\r\n")
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2 { headers[pair[0].lowercased()] = pair[1] }
        }
        return (head[0], headers, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test(arguments: ["HELLO\r\n\r\n", "GET\r\n\r\n", "\u{0}\u{1}\u{2}\r\n\r\n", "GET /vm HTTP/1.1\r\nHost x\r\n\r\n"])
    func garbageGetsAJSON400(_ garbage: String) throws {
        let reply = try parse(RawConnection.exchange(path, Array(garbage.utf8)))
        #expect(reply.statusLine == "HTTP/1.1 400 Bad Request")
        #expect(reply.headers["content-type"] == "application/json")
        #expect(reply.headers["connection"] == "close")
        #expect(reply.headers["content-length"] == String(reply.body.utf8.count))
        let body = try JSONDecoder().decode(ErrorBody.self, from: Data(reply.body.utf8))
        #expect(body.error.hasPrefix("malformed HTTP request: "))
        // The server goes on serving well-formed requests.
        let after = try ControlClient(socketPath: path).send(method: "GET", path: "/version")
        #expect(after.status == 200)
        #expect(fake.calls.isEmpty)
    }

    @Test func bodyOverTheLimitGets413AndNothingRuns() throws {
        let body = [UInt8](repeating: UInt8(ascii: " "), count: ControlServer.maximumBodyBytes + 1)
        let reply = try ControlClient(socketPath: path).send(method: "PUT", path: "/vm/pause", body: body)
        #expect(reply.status == 413)
        #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(reply.body)).error == "request body is larger than 65536 bytes")
        let atLimit = [UInt8](repeating: UInt8(ascii: " "), count: ControlServer.maximumBodyBytes)
        #expect(try ControlClient(socketPath: path).send(method: "PUT", path: "/vm/pause", body: atLimit).status == 200)
        #expect(fake.calls == ["pause", "vmInfo"])
    }
}

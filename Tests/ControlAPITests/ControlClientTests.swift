import ControlAPI
import Foundation
import Testing
import TestSupport

/// The client's errors: each names the socket and says what is wrong.
@Suite struct ControlClientTests {
    private let directory = TemporaryDirectory()

    @Test func missingSocket() {
        let path = directory.path("none.sock")
        #expect(throws: ControlClientError.socketMissing(path: path)) {
            try ControlClient(socketPath: path, timeoutSeconds: 5).send(method: "GET", path: "/vm")
        }
        #expect(ControlClientError.socketMissing(path: path).description == "no VM is listening on \(path): there is no such socket")
    }

    @Test func staleSocketIsRefused() throws {
        let path = directory.path("stale.sock")
        try RawConnection.makeStaleSocket(path)
        #expect(throws: ControlClientError.connectionRefused(path: path)) {
            try ControlClient(socketPath: path, timeoutSeconds: 5).send(method: "GET", path: "/vm")
        }
    }

    @Test func malformedReply() throws {
        let path = directory.path("junk.sock")
        let listener = try RawConnection.serve(path, reply: Array("SSH-2.0-OpenSSH\r\n\r\n".utf8))
        defer { listener.close(promise: nil) }
        #expect {
            try ControlClient(socketPath: path, timeoutSeconds: 5).send(method: "GET", path: "/vm")
        } throws: { error in
            guard case .malformedReply(path, _)? = error as? ControlClientError else { return false }
            return true
        }
    }

    @Test func closedWithoutAnswer() throws {
        let path = directory.path("mute.sock")
        let listener = try RawConnection.serve(path, reply: [])
        defer { listener.close(promise: nil) }
        #expect(throws: ControlClientError.closedBeforeReply(path: path)) {
            try ControlClient(socketPath: path, timeoutSeconds: 5).send(method: "GET", path: "/vm")
        }
    }

    @Test func timesOut() throws {
        let path = directory.path("slow.sock")
        var router = Router()
        router.add("GET", "/slow") { _ in
            Thread.sleep(forTimeInterval: 2)
            return .noContent
        }
        let server = ControlServer(socketPath: path, router: router)
        try server.start()
        defer { server.stop() }
        #expect(throws: ControlClientError.timedOut(path: path, seconds: 1)) {
            try ControlClient(socketPath: path, timeoutSeconds: 1).send(method: "GET", path: "/slow")
        }
    }

    @Test func noContentHasAnEmptyBody() throws {
        let path = directory.path("204.sock")
        var router = Router()
        router.add("PUT", "/nothing") { _ in .noContent }
        let server = ControlServer(socketPath: path, router: router)
        try server.start()
        defer { server.stop() }
        let reply = try ControlClient(socketPath: path).send(method: "PUT", path: "/nothing", body: Array("{}".utf8))
        #expect(reply.status == 204)
        #expect(reply.body.isEmpty)
    }
}

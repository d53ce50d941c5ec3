import Display
import Testing

/// Protocol versions, security types and ServerInit.
@Suite struct VNCHandshakeTests {
    @Test(arguments: ["003.003", "003.007", "003.008", "003.889"])
    func withoutPasswordEveryVersionGetsServerInit(version: String) throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.client()
        let initMessage = try client.handshake(version: version)
        #expect(initMessage.width == 200 && initMessage.height == 150)
        #expect(initMessage.name == "engram display.fb")
        // 32 bpp, depth 24, little-endian, true colour, max 255 each, shifts 16/8/0.
        #expect(initMessage.format == [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])
    }

    @Test func securityTypesOffered() throws {
        let open = try VNCServerFixture()
        #expect(try open.client().negotiate(version: "003.008") == [1])
        #expect(try open.client().negotiate(version: "003.003") == [1])
        let locked = try VNCServerFixture(password: "secret")
        #expect(try locked.client().negotiate(version: "003.008") == [2])
        #expect(try locked.client().negotiate(version: "003.007") == [2])
        #expect(try locked.client().negotiate(version: "003.003") == [2])
    }

    @Test(arguments: ["003.003", "003.007", "003.008"])
    func rightPasswordIsAccepted(version: String) throws {
        let fixture = try VNCServerFixture(password: "secret")
        let initMessage = try fixture.client().handshake(version: version, password: "secret")
        #expect(initMessage.width == 200)
    }

    @Test func wrongPasswordGetsAFailedResultWithAReasonThenAClose() throws {
        let fixture = try VNCServerFixture(password: "secret")
        let client = try fixture.client()
        #expect(try client.negotiate(version: "003.008") == [2])
        try client.send([2])
        let challenge = try client.read(16)
        try client.send(VNCPassword.response(challenge: challenge, password: Array("guess".utf8)))
        #expect(try client.u32() == 1)
        let reason = String(decoding: try client.read(try client.u32()), as: UTF8.self)
        #expect(reason == "wrong password")
        #expect(client.isClosedByServer())
        #expect(fixture.recorder.wait { $0.lines.withLock { $0.contains { $0.contains("wrong password") } } })
    }

    @Test func wrongPasswordOnVersion33GetsAFailedResultOnly() throws {
        let fixture = try VNCServerFixture(password: "secret")
        let client = try fixture.client()
        #expect(try client.negotiate(version: "003.003") == [2])
        _ = try client.read(16)
        try client.send([UInt8](repeating: 0, count: 16))
        #expect(try client.u32() == 1)
        #expect(client.isClosedByServer())
    }

    @Test func choosingASecurityTypeNotOfferedFails() throws {
        let fixture = try VNCServerFixture(password: "secret")
        let client = try fixture.client()
        _ = try client.negotiate(version: "003.008")
        try client.send([1])  // None, while the server asked for a password
        #expect(try client.u32() == 1)
        let reason = String(decoding: try client.read(try client.u32()), as: UTF8.self)
        #expect(reason.contains("security type 1"))
        #expect(client.isClosedByServer())
    }

    /// Idle connections cannot turn viewers away: none counts as a viewer before its handshake,
    /// and past the cap on pending handshakes the oldest are ended.
    @Test func idleConnectionsDoNotTurnViewersAway() throws {
        let fixture = try VNCServerFixture(password: "sesame")
        let idle = try (0..<(VNCServer.maximumViewers + 8)).map { _ in try fixture.client() }
        let viewer = try fixture.viewer(password: "sesame")
        try viewer.requestUpdate(incremental: false, width: 200, height: 150)
        #expect(try !viewer.readUpdate().isEmpty)
        // The oldest idle connections were ended to make room; the newest may still wait.
        #expect(idle.prefix(VNCServer.maximumViewers + 8 - VNCServer.maximumPendingHandshakes).allSatisfy { $0.isClosedByServer() })
    }

    @Test func notAnRFBClientIsClosed() throws {
        let fixture = try VNCServerFixture()
        let client = try fixture.client()
        _ = try client.read(12)
        try client.send(Array("GET / HTTP/1.1\r\n".utf8))
        #expect(client.isClosedByServer())
        #expect(fixture.recorder.wait { $0.lines.withLock { $0.contains { $0.contains("not an RFB client") } } })
    }

    @Test func aTakenPortIsReportedAsInUse() throws {
        let fixture = try VNCServerFixture()
        let port = fixture.server.boundPort
        #expect(throws: DisplayError.addressInUse("127.0.0.1:\(port)")) {
            _ = try VNCServer(view: try FramebufferView(path: fixture.file.path), host: "127.0.0.1", port: port)
        }
        #expect(DisplayError.addressInUse("127.0.0.1:5900").description.hasPrefix("127.0.0.1:5900 is in use"))
        #expect(throws: DisplayError.self) {
            _ = try VNCServer(view: try FramebufferView(path: fixture.file.path), host: "not an address", port: 0)
        }
    }

    @Test func listensOnIPv6Loopback() throws {
        let fixture = try VNCServerFixture()
        let server = try VNCServer(view: try FramebufferView(path: fixture.file.path), host: "::1", port: 0, name: "six", log: { _ in })
        try server.start()
        defer { server.stop() }
        #expect(server.address.hasPrefix("[::1]:"))
        let client = try RFBTestClient(host: "::1", port: server.boundPort)
        #expect(try client.handshake().name == "six")
    }
}

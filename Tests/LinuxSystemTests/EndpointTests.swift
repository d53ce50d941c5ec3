import Testing
@testable import LinuxSystem

/// HOST:PORT as `engram serve --listen` and `restore tcp://` take it.
@Suite struct EndpointTests {
    @Test func parsesHostsAndPorts() throws {
        let v4 = try Endpoint(parsing: "127.0.0.1:7000")
        #expect(v4.host == "127.0.0.1" && v4.port == 7000 && v4.description == "127.0.0.1:7000")
        let v6 = try Endpoint(parsing: "[::1]:7000")
        #expect(v6.host == "::1" && v6.port == 7000 && v6.description == "[::1]:7000")
        let name = try Endpoint(parsing: "pages.example:65535")
        #expect(name.host == "pages.example" && name.port == 65535)
        // The last colon separates the port, so a bare IPv6 address with a port still parses.
        let bare = try Endpoint(parsing: "fe80::1:80")
        #expect(bare.host == "fe80::1" && bare.port == 80 && bare.description == "[fe80::1]:80")
    }

    @Test(arguments: [
        ("nohost", "no port"),
        ("host:0", "1 to 65535"),
        ("h:99999", "1 to 65535"),
        ("h:-1", "1 to 65535"),
        ("h:", "1 to 65535"),
        ("h:http", "1 to 65535"),
        (":7000", "no host"),
        ("[]:7000", "no host"),
        ("[::1]", "1 to 65535"),
    ])
    func refusesWhatIsNotHostColonPort(text: String, reason: String) {
        let error = #expect(throws: SystemError.self) { _ = try Endpoint(parsing: text) }
        guard case .address(let given, let why) = error else {
            Issue.record("expected an address error for \(text), got \(String(describing: error))")
            return
        }
        #expect(given == text)
        #expect(why.contains(reason), "\(text): \(why)")
    }
}

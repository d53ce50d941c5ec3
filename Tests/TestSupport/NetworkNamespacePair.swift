import Foundation

/// Two network namespaces joined by a veth pair, made with `ip` for one test and removed after:
/// a "server" host at 10.X.Y.1 and a "client" host at 10.X.Y.2, each with loopback up.
public final class NetworkNamespacePair: @unchecked Sendable {
    public let server: String
    public let client: String
    public let serverAddress: String
    public let clientAddress: String

    /// True if this machine can make namespaces (root and iproute2).
    public static var available: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }

    public init() throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        server = "engram-s-\(tag)"
        client = "engram-c-\(tag)"
        let subnet = "10.\(Int.random(in: 100...250)).\(Int.random(in: 1...250))"
        serverAddress = subnet + ".1"
        clientAddress = subnet + ".2"
        let veth = ("es\(tag)".prefix(15), "ec\(tag)".prefix(15))
        try Self.ip(["netns", "add", server])
        try Self.ip(["netns", "add", client])
        try Self.ip(["link", "add", String(veth.0), "type", "veth", "peer", "name", String(veth.1)])
        try Self.ip(["link", "set", String(veth.0), "netns", server])
        try Self.ip(["link", "set", String(veth.1), "netns", client])
        for (namespace, device, address) in [(server, String(veth.0), serverAddress), (client, String(veth.1), clientAddress)] {
            try Self.ip(["-n", namespace, "addr", "add", address + "/24", "dev", device])
            try Self.ip(["-n", namespace, "link", "set", device, "up"])
            try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        }
    }

    deinit {
        try? Self.ip(["netns", "delete", server])
        try? Self.ip(["netns", "delete", client])
    }

    /// The arguments that run `executable arguments` inside `namespace`.
    public func command(in namespace: String, _ executable: String, _ arguments: [String]) -> (String, [String]) {
        ("/usr/sbin/ip", ["netns", "exec", namespace, executable] + arguments)
    }

    private static func ip(_ arguments: [String]) throws {
        let process = try GuestProcess(executable: "/usr/sbin/ip", arguments: arguments)
        let status = try process.waitForExit(timeout: 30)
        guard status == 0 else {
            throw GuestProcess.Timeout(description: "ip \(arguments.joined(separator: " ")) failed (\(status)): \(process.errorText)")
        }
    }
}

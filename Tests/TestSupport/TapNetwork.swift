import Foundation

/// A network namespace of one test's own with taps in it, made with `ip` and removed after:
/// one tap with the host's address on it, or several on a bridge that holds the address. VMMs
/// and host-side peers run inside it (`command(...)`), so the host's own interfaces are never touched.
public final class TapNetwork: @unchecked Sendable {
    public let namespace: String
    /// The taps' names, in order.
    public let taps: [String]
    /// The host side's address (on the only tap, or on the bridge), and the subnet's first three parts.
    public let hostAddress: String
    public let subnet: String

    /// False when the namespace belongs to someone else (only the tap is removed at the end).
    private let ownsNamespace: Bool

    public static var available: Bool { NetworkNamespacePair.available && FileManager.default.fileExists(atPath: "/dev/net/tun") }

    /// `count` taps; with more than one (or `bridged`), on a bridge. With `owner`, that uid may
    /// attach to the taps without CAP_NET_ADMIN (a jailed VMM).
    public init(taps count: Int = 1, bridged: Bool = false, owner: String? = nil) throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        namespace = "engram-n-\(tag)"
        ownsNamespace = true
        taps = (0..<count).map { "et\(tag)\($0)".prefix(15).description }
        subnet = "10.\(Int.random(in: 100...250)).\(Int.random(in: 1...250))"
        hostAddress = subnet + ".1"
        try Self.ip(["netns", "add", namespace])
        try Self.ip(["-n", namespace, "link", "set", "lo", "up"])
        let bridge = bridged || count > 1 ? "eb\(tag)".prefix(15).description : nil
        if let bridge {
            try Self.ip(["-n", namespace, "link", "add", bridge, "type", "bridge"])
            try Self.ip(["-n", namespace, "addr", "add", hostAddress + "/24", "dev", bridge])
            try Self.ip(["-n", namespace, "link", "set", bridge, "up"])
        }
        for tap in taps {
            try Self.ip(["-n", namespace, "tuntap", "add", tap, "mode", "tap", "vnet_hdr"] + (owner.map { ["user", $0] } ?? []))
            // Room for 10 s of a 1 kHz stream while no VMM reads the tap (a live update on a loaded host).
            try Self.ip(["-n", namespace, "link", "set", tap, "txqueuelen", "10000"])
            if let bridge { try Self.ip(["-n", namespace, "link", "set", tap, "master", bridge]) }
            try Self.ip(["-n", namespace, "link", "set", tap, "up"])
        }
        if bridge == nil { try Self.ip(["-n", namespace, "addr", "add", hostAddress + "/24", "dev", taps[0]]) }
    }

    /// One tap with the host address `subnet.1` in an existing namespace (a migration test's
    /// source or destination host).
    public init(in namespace: String, subnet: String) throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        self.namespace = namespace
        ownsNamespace = false
        taps = ["et\(tag)".prefix(15).description]
        self.subnet = subnet
        hostAddress = subnet + ".1"
        try Self.ip(["-n", namespace, "tuntap", "add", taps[0], "mode", "tap", "vnet_hdr"])
        try Self.ip(["-n", namespace, "addr", "add", hostAddress + "/24", "dev", taps[0]])
        try Self.ip(["-n", namespace, "link", "set", taps[0], "up"])
    }

    deinit {
        if ownsNamespace {
            try? Self.ip(["netns", "delete", namespace])
        } else {
            for tap in taps { try? Self.ip(["-n", namespace, "link", "delete", tap]) }
        }
    }

    /// The guest address `index` (2, 3, …) in this network.
    public func guestAddress(_ index: Int) -> String { "\(subnet).\(index + 2)" }

    /// Starts `executable arguments` inside the namespace.
    public func spawn(_ executable: String, _ arguments: [String]) throws -> GuestProcess {
        try GuestProcess(executable: "/usr/sbin/ip", arguments: ["netns", "exec", namespace, executable] + arguments)
    }

    /// Runs the host-side peer (Tests/Tools/net_probe.py) inside the namespace.
    public func probe(_ arguments: [String]) throws -> GuestProcess {
        try spawn("/usr/bin/python3", [ProjectPaths.root.appendingPathComponent("Tests/Tools/net_probe.py").path] + arguments)
    }

    /// Runs the probe to its end and returns its last line.
    public func probeResult(_ arguments: [String], timeout: TimeInterval = 120) throws -> String {
        let process = try probe(arguments)
        let status = try process.waitForExit(timeout: timeout)
        let line = process.consoleText.split(separator: "\n").last.map(String.init) ?? ""
        guard status == 0 else { throw GuestProcess.Timeout(description: "net_probe \(arguments.joined(separator: " ")) failed (\(status)): \(process.errorText)") }
        return line
    }

    /// Runs `ip arguments`, throwing with its error output when it fails.
    public static func ip(_ arguments: [String]) throws {
        let process = try GuestProcess(executable: "/usr/sbin/ip", arguments: arguments)
        let status = try process.waitForExit(timeout: 30)
        guard status == 0 else {
            throw GuestProcess.Timeout(description: "ip \(arguments.joined(separator: " ")) failed (\(status)): \(process.errorText)")
        }
    }
}

import Foundation
import Glibc
import LinuxSystem

/// A tap in a network namespace of the test's own, and the "wire" on its far side: a raw packet
/// socket bound to the tap. Frames sent on the wire go out of the tap interface, so the tap
/// queue hands them to whoever reads it (the device's receive path); frames written to the tap
/// queue (the device's transmit path) come in on the interface and are read from the wire.
///
/// Only the thread that makes them enters the namespace (setns affects the calling thread
/// alone): the host's own namespace and interfaces are never touched.
public final class TapWire: @unchecked Sendable {
    public let namespace: String
    package let tap: TapDevice
    /// The AF_PACKET socket bound to the tap interface.
    public let wire: CInt

    /// Root and a tun driver: what making namespaces and taps takes.
    public static var available: Bool { TapNetwork.available }

    public init() throws {
        let tag = String(UInt32.random(in: 0..<UInt32.max), radix: 36)
        namespace = "engram-u-\(tag)"
        let name = "eu\(tag)"
        try TapNetwork.ip(["netns", "add", namespace])
        do {
            // No IPv6 in the namespace: its router solicitations and DAD would show up as frames.
            try TapNetwork.ip(["netns", "exec", namespace, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            (tap, wire) = try Self.makeInNamespace(namespace, tapName: name)
            try TapNetwork.ip(["-n", namespace, "link", "set", tap.name, "up"])
        } catch {
            try? TapNetwork.ip(["netns", "delete", namespace])
            throw error
        }
    }

    deinit {
        close(wire)
        removeNamespace()
    }

    /// Deletes the namespace, and the tap with it (deinit does; a process that never ends its
    /// wire calls it before exit).
    public func removeNamespace() { try? TapNetwork.ip(["netns", "delete", namespace]) }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    private final class Outcome: @unchecked Sendable { var value: Result<(TapDevice, CInt), any Error> = .failure(Failure(description: "not run")) }

    /// Creates the tap and the packet socket from a thread that entered `namespace` (and ends there).
    private static func makeInNamespace(_ namespace: String, tapName: String) throws -> (TapDevice, CInt) {
        let outcome = Outcome()
        let thread = try NamedThread.spawn(name: "tap-wire", role: .control) {
            outcome.value = Result { () throws -> (TapDevice, CInt) in
                let handle = open("/var/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
                guard handle >= 0 else { throw Failure(description: "open netns \(namespace): errno \(errno)") }
                defer { close(handle) }
                guard try setNetworkNamespace(handle) == 0 else { throw Failure(description: "setns \(namespace): errno \(errno)") }
                let tap = try TapDevice(name: tapName)
                let index = if_nametoindex(tap.name)
                guard index != 0 else { throw Failure(description: "if_nametoindex \(tap.name): errno \(errno)") }
                let protocolAll = UInt16(3).bigEndian  // ETH_P_ALL
                let socket = Glibc.socket(AF_PACKET, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(protocolAll))
                guard socket >= 0 else { throw Failure(description: "socket AF_PACKET: errno \(errno)") }
                var address = LinkAddress()
                address.family = UInt16(AF_PACKET)
                address.protocolNumber = protocolAll
                address.interfaceIndex = Int32(index)
                let bound = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, socklen_t(MemoryLayout<LinkAddress>.size)) }
                }
                guard bound == 0 else {
                    close(socket)
                    throw Failure(description: "bind AF_PACKET to \(tap.name): errno \(errno)")
                }
                return (tap, socket)
            }
        }
        thread.join()
        return try outcome.value.get()
    }

    /// Sends `frame` (an Ethernet frame) out of the tap interface, towards the device.
    /// Right after the tap comes up the kernel has not yet attached its queue discipline (that
    /// waits for the link watch): sends fail with ENETDOWN, the frame not queued, for a moment.
    public func send(_ frame: [UInt8]) throws {
        let deadline = Date().addingTimeInterval(5)
        while true {
            let sent = frame.withUnsafeBytes { Glibc.send(wire, $0.baseAddress, $0.count, 0) }
            if sent == frame.count { return }
            guard sent < 0, errno == ENETDOWN, Date() < deadline else { throw Failure(description: "send on the wire: \(sent), errno \(errno)") }
            usleep(1000)
        }
    }

    /// The next frame that came in on the tap interface (written by the device), or nil after
    /// `seconds`. Frames the namespace itself sends out are skipped.
    public func receive(within seconds: Double = 5) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 70_000)
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { return nil }
            var poller = pollfd(fd: wire, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(left * 1000 + 1, 1000))) > 0 else { continue }
            var from = LinkAddress()
            var fromLength = socklen_t(MemoryLayout<LinkAddress>.size)
            let length = buffer.withUnsafeMutableBytes { bytes in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(wire, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, &fromLength) }
                }
            }
            guard length >= 0 else { continue }
            if from.packetType == LinkAddress.outgoing { continue }
            return Array(buffer[0..<length])
        }
    }
}

/// struct sockaddr_ll (<linux/if_packet.h>, not in Swift's Glibc module), field for field.
private struct LinkAddress {
    var family: UInt16 = 0
    var protocolNumber: UInt16 = 0
    var interfaceIndex: Int32 = 0
    var hardwareType: UInt16 = 0
    var packetType: UInt8 = 0
    var addressLength: UInt8 = 0
    var address: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
    /// PACKET_OUTGOING: a frame this host sent, seen on its way out.
    static let outgoing: UInt8 = 4
}

/// setns(fd, CLONE_NEWNET) for the calling thread; Swift's Glibc module hides setns behind
/// _GNU_SOURCE, so it is looked up at run time.
private func setNetworkNamespace(_ handle: CInt) throws -> CInt {
    typealias SetNamespace = @convention(c) (CInt, CInt) -> CInt
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "setns") else { throw TapWire.Failure(description: "no setns in libc") }
    return unsafeBitCast(symbol, to: SetNamespace.self)(handle, 0x4000_0000)  // CLONE_NEWNET
}

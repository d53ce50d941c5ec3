import CLinux
import Glibc
import SystemPackage

/// A tap interface's queue, opened through /dev/net/tun (or handed over already open): Ethernet
/// frames, each after a 12-byte virtio-net header, read and written one per call without
/// blocking. The header lets the kernel pass checksum and segmentation work through to the guest
/// instead of doing it per frame.
package final class TapDevice: Sendable {
    /// The interface's name, as the kernel reports it.
    package let name: String
    package let descriptor: OwnedFileDescriptor
    /// The virtio-net header before every frame (virtio 1.x: with num_buffers).
    package static let headerSize: CInt = 12

    /// Attaches to the tap `name`, creating it when it does not exist and this process may.
    package init(name: String) throws(SystemError) {
        guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains("\0") else {
            throw SystemError("TUNSETIFF", on: "tap \(name)", .invalidArgument)
        }
        let owned = try OwnedFileDescriptor.open("/dev/net/tun", .readWrite)
        var actual = [CChar](repeating: 0, count: 16)
        guard clinux_tap_attach(owned.rawValue, name, &actual) == 0 else { throw .last("TUNSETIFF", on: "tap \(name)") }
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        descriptor = owned
        try configure()
    }

    /// Adopts `descriptor`, an open tap queue (the caller's `fd=N`, or one kept across exec);
    /// refuses anything but a tap opened with IFF_VNET_HDR and without packet information.
    package init(adopting descriptor: OwnedFileDescriptor) throws(SystemError) {
        var actual = [CChar](repeating: 0, count: 16)
        var flags: CUnsignedInt = 0
        guard clinux_tap_query(descriptor.rawValue, &actual, &flags) == 0 else {
            throw .last("TUNGETIFF", on: "descriptor \(descriptor.rawValue)")
        }
        let wanted = CLINUX_IFF_TAP | CLINUX_IFF_NO_PI | CLINUX_IFF_VNET_HDR
        guard flags & (wanted | 0x0001 /* IFF_TUN */) == wanted else {
            throw SystemError("TUNGETIFF (a tap without IFF_NO_PI and IFF_VNET_HDR)", on: "descriptor \(descriptor.rawValue)", .invalidArgument)
        }
        name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.descriptor = descriptor
        try configure()
    }

    private func configure() throws(SystemError) {
        let fd = descriptor.rawValue
        guard fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0 else { throw .last("fcntl", on: "tap \(name)") }
        guard clinux_tap_set_header_size(fd, Self.headerSize) == 0 else { throw .last("TUNSETVNETHDRSZ", on: "tap \(name)") }
        try setOffloads([])
    }

    /// Which offloaded frames the kernel may hand over (what the guest's driver accepts).
    package struct Offloads: OptionSet, Sendable {
        package let rawValue: CUnsignedInt
        package init(rawValue: CUnsignedInt) { self.rawValue = rawValue }
        /// Frames whose checksum is left to the receiver.
        package static let checksum = Offloads(rawValue: CLINUX_TUN_F_CSUM)
        package static let tcp4Segmentation = Offloads(rawValue: CLINUX_TUN_F_TSO4)
        package static let tcp6Segmentation = Offloads(rawValue: CLINUX_TUN_F_TSO6)
        package static let tcpECN = Offloads(rawValue: CLINUX_TUN_F_TSO_ECN)
    }

    /// TUNSETOFFLOAD.
    package func setOffloads(_ offloads: Offloads) throws(SystemError) {
        guard clinux_tap_set_offload(descriptor.rawValue, offloads.rawValue) == 0 else { throw .last("TUNSETOFFLOAD", on: "tap \(name)") }
    }

    /// Writes one frame (`bytes` starts with its header); false when the tap's queue is full.
    package func send(_ bytes: [UInt8]) throws(SystemError) -> Bool {
        while true {
            let result = unsafe bytes.withUnsafeBytes { unsafe Glibc.write(descriptor.rawValue, $0.baseAddress, $0.count) }
            if result >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            default: throw .last("write", on: "tap \(name)")
            }
        }
    }

    /// Reads one frame (with its header) into `buffer`: its length, or nil when none is waiting.
    /// A frame longer than the buffer is dropped by the kernel (EFAULT, thrown).
    package func receive(into buffer: inout [UInt8]) throws(SystemError) -> Int? {
        while true {
            let result = unsafe buffer.withUnsafeMutableBytes { unsafe Glibc.read(descriptor.rawValue, $0.baseAddress, $0.count) }
            if result >= 0 { return result }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw .last("read", on: "tap \(name)")
            }
        }
    }
}

/// A virtio-vsock device as the user gave it (`--vsock CID,PATH`, Firecracker's `guest_cid` and
/// `uds_path`): the guest's context id, and the Unix socket host programs connect to.
package struct VsockConfiguration: Sendable, Equatable, Codable {
    /// The guest's CID: 0–2 are reserved (hypervisor, local, host), and u32's last value is "any".
    package var guestCID: UInt64
    /// Where Engram listens; a guest connection to host port P goes to `PATH_P`.
    package var path: String

    package init(guestCID: UInt64, path: String) {
        self.guestCID = guestCID
        self.path = path
    }

    /// The lowest CID a guest may have.
    package static let firstGuestCID: UInt64 = 3
    /// The highest (0xffffffff is VMADDR_CID_ANY).
    package static let lastGuestCID: UInt64 = 0xffff_fffe
}

extension VsockConfiguration {
    static let syntax = "CID,PATH with CID a number from 3 to 4294967294 and PATH the Unix socket to listen on"

    /// Parses `CID,PATH`; the path may itself contain commas.
    package static func parse(_ text: String) throws(DeviceError) -> VsockConfiguration {
        guard let comma = text.firstIndex(of: ",") else { throw .invalidOption(option: "--vsock", value: text, expected: syntax) }
        let path = String(text[text.index(after: comma)...])
        guard let cid = UInt64(text[..<comma]), cid >= firstGuestCID, cid <= lastGuestCID, !path.isEmpty, !path.contains("\0") else {
            throw .invalidOption(option: "--vsock", value: text, expected: syntax)
        }
        return VsockConfiguration(guestCID: cid, path: path)
    }
}

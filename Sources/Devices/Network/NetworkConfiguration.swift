/// A network interface as the user gave it (`--net tap=NAME[,mac=MAC]` or `--net fd=N[,mac=MAC]`,
/// Firecracker's `host_dev_name` and `guest_mac`, Cloud Hypervisor's `net_fds`).
package struct NetworkConfiguration: Sendable, Equatable, Codable {
    /// Where the frames go on the host.
    package enum Backend: Sendable, Equatable {
        /// The tap interface of that name, attached to (or created) by Engram.
        case tap(String)
        /// A tap queue the caller opened and handed over as this descriptor.
        case descriptor(CInt)
    }

    package var backend: Backend
    /// The guest's address; nil: Engram picks a random locally administered one at boot.
    package var mac: MACAddress?

    package init(backend: Backend, mac: MACAddress? = nil) {
        self.backend = backend
        self.mac = mac
    }

    /// The tap's name, or the descriptor, for messages.
    package var hostSide: String {
        switch backend {
        case .tap(let name): "tap \(name)"
        case .descriptor(let fd): "tap descriptor \(fd)"
        }
    }
}

extension NetworkConfiguration {
    private enum CodingKeys: String, CodingKey { case tap, fd, mac }

    /// `{"tap": NAME, "mac": MAC}` or `{"fd": N, "mac": MAC}`.
    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let name = try container.decodeIfPresent(String.self, forKey: .tap) {
            backend = .tap(name)
        } else {
            backend = .descriptor(try container.decode(CInt.self, forKey: .fd))
        }
        mac = try container.decodeIfPresent(MACAddress.self, forKey: .mac)
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch backend {
        case .tap(let name): try container.encode(name, forKey: .tap)
        case .descriptor(let fd): try container.encode(fd, forKey: .fd)
        }
        try container.encodeIfPresent(mac, forKey: .mac)
    }
}

extension NetworkConfiguration {
    package static let syntax = "tap=NAME[,mac=MAC] or fd=N[,mac=MAC] (NAME 1 to 15 bytes, MAC aa:bb:cc:dd:ee:ff unicast)"

    /// Parses `tap=NAME[,mac=MAC]` or `fd=N[,mac=MAC]`.
    package static func parse(_ text: String) throws(DeviceError) -> NetworkConfiguration {
        let invalid = DeviceError.invalidOption(option: "--net", value: text, expected: syntax)
        var backend: Backend?
        var mac: MACAddress?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            if part.hasPrefix("tap="), backend == nil {
                let name = String(part.dropFirst(4))
                guard !name.isEmpty, name.utf8.count <= 15, !name.contains("/"), !name.contains(" "), !name.contains("\0") else { throw invalid }
                backend = .tap(name)
            } else if part.hasPrefix("fd="), backend == nil {
                guard let fd = CInt(part.dropFirst(3)), fd >= 0 else { throw invalid }
                backend = .descriptor(fd)
            } else if part.hasPrefix("mac="), mac == nil {
                guard let address = MACAddress(String(part.dropFirst(4))), !address.isMulticast else { throw invalid }
                mac = address
            } else {
                throw invalid
            }
        }
        guard let backend else { throw invalid }
        return NetworkConfiguration(backend: backend, mac: mac)
    }
}

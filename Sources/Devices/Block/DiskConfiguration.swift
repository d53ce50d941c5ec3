/// A disk as the user gave it (`--disk PATH[,readonly][,id=NAME][,bandwidth=…][,iops=…]`).
package struct DiskConfiguration: Sendable, Equatable, Codable {
    /// The raw image file (or block device).
    package var path: String
    package var readOnly: Bool
    /// What GET_ID answers (at most 20 bytes); nil: the device's name, e.g. "blk0".
    package var identifier: String?
    /// The I/O limit; nil: none.
    package var rateLimit: DiskRateLimit?

    package init(path: String, readOnly: Bool = false, identifier: String? = nil, rateLimit: DiskRateLimit? = nil) {
        self.path = path
        self.readOnly = readOnly
        self.identifier = identifier
        self.rateLimit = rateLimit
    }
}

extension DiskConfiguration {
    static let syntax =
        "PATH[,readonly][,id=NAME][,bandwidth=BYTES_PER_S[,bandwidth_burst=BYTES]][,iops=REQUESTS_PER_S[,iops_burst=N]] (NAME at most 20 bytes, limits at least 1)"

    static let limitKeys: Set<String> = ["bandwidth", "bandwidth_burst", "iops", "iops_burst"]

    /// Parses `PATH[,readonly][,id=NAME][,bandwidth=N[,bandwidth_burst=N]][,iops=N[,iops_burst=N]]`.
    package static func parse(_ text: String) throws(DeviceError) -> DiskConfiguration {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let path = parts.first, !path.isEmpty, !path.contains("\0") else {
            throw .invalidOption(option: "--disk", value: text, expected: syntax)
        }
        var disk = DiskConfiguration(path: path)
        var limits: [String: UInt64] = [:]
        for part in parts.dropFirst() {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            if part == "readonly" || part == "ro" {
                disk.readOnly = true
            } else if part.hasPrefix("id="), part.utf8.count - 3 <= 20, part.count > 3 {
                disk.identifier = String(part.dropFirst(3))
            } else if pair.count == 2, Self.limitKeys.contains(pair[0]), let value = UInt64(pair[1]), value > 0, limits[pair[0]] == nil {
                limits[pair[0]] = value
            } else {
                throw .invalidOption(option: "--disk", value: text, expected: syntax)
            }
        }
        guard limits["bandwidth_burst"] == nil || limits["bandwidth"] != nil, limits["iops_burst"] == nil || limits["iops"] != nil else {
            throw .invalidOption(option: "--disk", value: text, expected: syntax)
        }
        if !limits.isEmpty {
            disk.rateLimit = DiskRateLimit(
                bandwidth: limits["bandwidth"].map { RateLimit(rate: $0, burst: limits["bandwidth_burst"]) },
                operations: limits["iops"].map { RateLimit(rate: $0, burst: limits["iops_burst"]) })
        }
        return disk
    }
}

/// A disk as the user gave it (`--disk PATH[,readonly][,id=NAME]`).
package struct DiskConfiguration: Sendable, Equatable, Codable {
    /// The raw image file (or block device).
    package var path: String
    package var readOnly: Bool
    /// What GET_ID answers (at most 20 bytes); nil: the device's name, e.g. "blk0".
    package var identifier: String?

    package init(path: String, readOnly: Bool = false, identifier: String? = nil) {
        self.path = path
        self.readOnly = readOnly
        self.identifier = identifier
    }
}

extension DiskConfiguration {
    static let syntax = "PATH[,readonly][,id=NAME] (NAME at most 20 bytes)"

    /// Parses `PATH[,readonly][,id=NAME]`.
    package static func parse(_ text: String) throws(DeviceError) -> DiskConfiguration {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let path = parts.first, !path.isEmpty, !path.contains("\0") else {
            throw .invalidOption(option: "--disk", value: text, expected: syntax)
        }
        var disk = DiskConfiguration(path: path)
        for part in parts.dropFirst() {
            if part == "readonly" || part == "ro" {
                disk.readOnly = true
            } else if part.hasPrefix("id="), part.utf8.count - 3 <= 20, part.count > 3 {
                disk.identifier = String(part.dropFirst(3))
            } else {
                throw .invalidOption(option: "--disk", value: text, expected: syntax)
            }
        }
        return disk
    }
}
